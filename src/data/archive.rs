//! Unpacking `cola_public_1.1.zip` safely.
//!
//! The zip comes from the network (or a user's copy), so it is treated as untrusted: entries
//! that would land outside the target are refused (zip-slip), and the unpacked tree must hold
//! the three raw files with the published row counts before it replaces anything. Unpacking
//! goes to a temporary sibling folder that is renamed into place only once it checks out, so
//! an interrupted or bad download never leaves a half-written dataset behind.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::data::cola::{Cola, Split};

/// Checks that `dir` is a complete CoLA 1.1 `cola_public` folder.
pub fn verify(dir: &Path) -> Result<()> {
    for split in Split::ALL {
        let cola = Cola::load_split(dir, split)?;
        if cola.len() != split.expected_rows() {
            bail!(
                "{}: expected {} sentences for CoLA 1.1, found {}; the download does not match \
                 the published dataset",
                cola.path.display(),
                split.expected_rows(),
                cola.len()
            );
        }
    }
    Ok(())
}

/// Unpacks `zip_path` (a `cola_public_1.1.zip`) so that `<dest>/cola_public/` holds the data.
///
/// Returns the path of the `cola_public` folder. An existing, valid folder is left alone.
pub fn extract(zip_path: &Path, dest: &Path) -> Result<PathBuf> {
    let target = dest.join("cola_public");
    if verify(&target).is_ok() {
        return Ok(target);
    }
    let file = fs::File::open(zip_path)
        .with_context(|| format!("cannot open CoLA archive {}", zip_path.display()))?;
    let mut zip = zip::ZipArchive::new(file)
        .with_context(|| format!("{} is not a readable zip archive", zip_path.display()))?;

    fs::create_dir_all(dest).with_context(|| format!("cannot create {}", dest.display()))?;
    let staging = dest.join(".cola_public.partial");
    if staging.exists() {
        fs::remove_dir_all(&staging)
            .with_context(|| format!("cannot clear {}", staging.display()))?;
    }
    let result = unpack(&mut zip, zip_path, &staging).and_then(|()| {
        let unpacked = staging.join("cola_public");
        verify(&unpacked).with_context(|| format!("checking {}", zip_path.display()))?;
        if target.exists() {
            fs::remove_dir_all(&target)
                .with_context(|| format!("cannot replace {}", target.display()))?;
        }
        fs::rename(&unpacked, &target)
            .with_context(|| format!("cannot move data into {}", target.display()))?;
        Ok(())
    });
    let _ = fs::remove_dir_all(&staging);
    result.map(|()| target)
}

fn unpack(zip: &mut zip::ZipArchive<fs::File>, zip_path: &Path, into: &Path) -> Result<()> {
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .with_context(|| format!("{}: cannot read entry {i}", zip_path.display()))?;
        let Some(relative) = entry.enclosed_name() else {
            bail!(
                "{}: entry {:?} would extract outside {}; refusing the archive",
                zip_path.display(),
                entry.name(),
                into.display()
            );
        };
        let out = into.join(relative);
        if entry.is_dir() {
            fs::create_dir_all(&out)?;
            continue;
        }
        if let Some(parent) = out.parent() {
            fs::create_dir_all(parent)?;
        }
        let mut writer =
            fs::File::create(&out).with_context(|| format!("cannot write {}", out.display()))?;
        io::copy(&mut entry, &mut writer).with_context(|| {
            format!(
                "{}: entry {:?} is damaged",
                zip_path.display(),
                entry.name()
            )
        })?;
    }
    Ok(())
}
