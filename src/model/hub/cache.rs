//! The hub cache layout, exactly as Python's `huggingface_hub` writes it:
//!
//! ```text
//! <cache>/models--google-bert--bert-base-uncased/
//!     refs/main                      the commit `main` pointed at when last fetched
//!     blobs/<etag>                   file contents, named by sha256 (LFS) or git sha1
//!     blobs/<etag>.incomplete        a download in progress, resumed from its length
//!     snapshots/<commit>/<file>  ->  ../../blobs/<etag>   (relative symlinks)
//!     .no_exist/<commit>/<file>      the hub has no such file at that commit
//! <cache>/.locks/models--google-bert--bert-base-uncased/<etag>.lock   held while downloading
//! ```
//!
//! Commits and etags that name folders here come from a server; `hub::answer` checks them
//! where they arrive, and [`plain_name`] checks them again before a path is made of them, so
//! nothing can point outside the repository's folder.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{REQUIRED_FILES, TOKENIZER_FILES};

/// One repository's folder in the cache.
#[derive(Debug, Clone)]
pub struct RepoCache {
    pub root: PathBuf,
}

fn is_commit_hash(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A single path component that names nothing but itself: no separator, not `.` or `..`.
pub fn plain_name(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+'))
}

/// A relative path of [`plain_name`]s separated by `/` (`refs/pr/1`, `main`): it stays below
/// the folder it is joined to.
pub fn plain_parts(s: &str) -> bool {
    s.split('/').all(plain_name)
}

/// Refuses a commit or etag that is not a [`plain_name`] before it becomes part of a path.
fn checked<'a>(what: &str, s: &'a str) -> Result<&'a str> {
    if plain_name(s) {
        Ok(s)
    } else {
        anyhow::bail!("{what} {s:?} cannot name a folder in the hub cache")
    }
}

impl RepoCache {
    pub fn new(cache_dir: &Path, id: &str) -> Self {
        RepoCache {
            root: cache_dir.join(format!("models--{}", id.replace('/', "--"))),
        }
    }

    /// The commit a revision stands for in the cache: `refs/<revision>`, or the revision itself
    /// when it is a full commit hash.
    pub fn commit(&self, revision: &str) -> Option<String> {
        if let Ok(text) = std::fs::read_to_string(self.root.join("refs").join(revision)) {
            let commit = text.trim().to_string();
            if plain_name(&commit) {
                return Some(commit);
            }
        }
        is_commit_hash(revision).then(|| revision.to_string())
    }

    pub fn snapshot(&self, commit: &str) -> PathBuf {
        self.root.join("snapshots").join(commit)
    }

    pub fn blob(&self, etag: &str) -> PathBuf {
        self.root.join("blobs").join(etag)
    }

    pub fn incomplete(&self, etag: &str) -> PathBuf {
        self.root.join("blobs").join(format!("{etag}.incomplete"))
    }

    /// The lock Python's `huggingface_hub` takes while fetching a blob:
    /// `<cache>/.locks/<repo folder>/<etag>.lock`.
    pub fn lock(&self, etag: &str) -> PathBuf {
        let cache = self.root.parent().unwrap_or(&self.root);
        let folder = self.root.file_name().unwrap_or_default();
        cache
            .join(".locks")
            .join(folder)
            .join(format!("{etag}.lock"))
    }

    /// Required files absent from a snapshot folder (a dangling link counts as absent).
    pub fn missing_in(snapshot: &Path) -> Vec<String> {
        let present = |f: &str| snapshot.join(f).is_file();
        let mut missing: Vec<String> = REQUIRED_FILES
            .iter()
            .filter(|f| !present(f))
            .map(|f| f.to_string())
            .collect();
        if !TOKENIZER_FILES.iter().any(|f| present(f)) {
            missing.push(TOKENIZER_FILES.join(" or "));
        }
        missing
    }

    /// What `revision`'s snapshot lacks, for the offline error (everything when unknown).
    pub fn missing_files(&self, revision: &str) -> Vec<String> {
        match self.commit(revision) {
            Some(commit) => Self::missing_in(&self.snapshot(&commit)),
            None => Self::missing_in(Path::new("/nonexistent")),
        }
    }

    /// The snapshot folder of `revision` when every required file is in it.
    pub fn complete_snapshot(&self, revision: &str) -> Option<PathBuf> {
        let snapshot = self.snapshot(&self.commit(revision)?);
        Self::missing_in(&snapshot).is_empty().then_some(snapshot)
    }

    /// Records which commit a branch or tag points at (nothing to record for a commit hash).
    pub fn set_ref(&self, revision: &str, commit: &str) -> Result<()> {
        if revision == commit {
            return Ok(());
        }
        checked("commit", commit)?;
        if !plain_parts(revision) {
            anyhow::bail!("revision {revision:?} cannot name a file in the hub cache");
        }
        let path = self.root.join("refs").join(revision);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        crate::runtime::atomic::write_shared(&path, commit.as_bytes())?;
        Ok(())
    }

    /// Links `snapshots/<commit>/<file>` to its blob with a relative path, as Python does.
    pub fn link(&self, commit: &str, file: &str, etag: &str) -> Result<PathBuf> {
        checked("commit", commit)?;
        checked("etag", etag)?;
        if !plain_parts(file) {
            anyhow::bail!("file name {file:?} cannot name a file in the hub cache");
        }
        let link = self.snapshot(commit).join(file);
        let parent = link.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        let depth = file.matches('/').count() + 2;
        let target = Path::new(&"../".repeat(depth)).join("blobs").join(etag);
        if std::fs::symlink_metadata(&link).is_ok() {
            std::fs::remove_file(&link)
                .with_context(|| format!("cannot replace {}", link.display()))?;
        }
        std::os::unix::fs::symlink(&target, &link)
            .with_context(|| format!("cannot link {} to its blob", link.display()))?;
        Ok(link)
    }

    /// Notes that the hub has no `file` at `commit`, so an optional file is not asked again.
    pub fn mark_absent(&self, commit: &str, file: &str) -> Result<()> {
        checked("commit", commit)?;
        let path = self.root.join(".no_exist").join(commit).join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, b"").with_context(|| format!("cannot write {}", path.display()))
    }

    pub fn known_absent(&self, commit: &str, file: &str) -> bool {
        self.root.join(".no_exist").join(commit).join(file).exists()
    }
}
