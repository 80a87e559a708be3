//! Files that are either complete or absent.
//!
//! Checkpoints are written next to their final name and renamed into place, so a crash, a full
//! disk or Ctrl-C in a notebook never leaves a half-written `model.safetensors` that a later
//! `from_pretrained` would trip over.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Temporary sibling name used while `path` is being written.
pub fn partial_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.partial"))
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub fn write(path: &Path, bytes: &[u8]) -> Result<PathBuf> {
    write_through(path, &partial_name(path), bytes)
}

/// [`write`] for a file that other processes or threads may write at the same moment (the
/// hub cache's `refs/main`, when a notebook and a CLI fetch together): the temporary name is
/// unique to this process and call, so two writers never share it; the last rename wins,
/// and every reader sees one whole version.
pub fn write_shared(path: &Path, bytes: &[u8]) -> Result<PathBuf> {
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let partial = partial_name(path);
    let name = partial
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = partial.with_file_name(format!("{name}.{}.{call}", std::process::id()));
    write_through(path, &tmp, bytes)
}

fn write_through(path: &Path, tmp: &Path, bytes: &[u8]) -> Result<PathBuf> {
    let tmp = tmp.to_path_buf();
    let result = (|| -> Result<()> {
        let mut file = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        file.write_all(bytes)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        file.sync_all()
            .with_context(|| format!("cannot flush {}", tmp.display()))?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("cannot move {} into place", path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map(|()| path.to_path_buf())
}
