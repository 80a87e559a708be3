//! The hub cache layout, exactly as Python's `huggingface_hub` writes it:
//!
//! ```text
//! <cache>/models--google-bert--bert-base-uncased/
//!     refs/main                      the commit `main` pointed at when last fetched
//!     blobs/<etag>                   file contents, named by sha256 (LFS) or git sha1
//!     blobs/<etag>.incomplete        a download in progress, resumed from its length
//!     snapshots/<commit>/<file>  ->  ../../blobs/<etag>   (relative symlinks)
//!     .no_exist/<commit>/<file>      the hub has no such file at that commit
//! ```

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
            if !commit.is_empty() && !commit.contains(['/', '\\']) && commit != ".." {
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
        let path = self.root.join("refs").join(revision);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        crate::atomic::write(&path, commit.as_bytes())?;
        Ok(())
    }

    /// Links `snapshots/<commit>/<file>` to its blob with a relative path, as Python does.
    pub fn link(&self, commit: &str, file: &str, etag: &str) -> Result<PathBuf> {
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
