//! Where `bert-finetune train` puts what it writes besides the checkpoint, all in one folder.

use std::path::PathBuf;

/// The outputs of a training run, all in the `--out` folder.
pub struct RunFiles {
    pub dir: PathBuf,
}

impl RunFiles {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        RunFiles { dir: dir.into() }
    }

    /// Loss and accuracy per epoch and per batch, for plots and for a resumed run.
    pub fn history(&self) -> PathBuf {
        self.dir.join("history.json")
    }

    /// The run's settings and test scores in one small file.
    pub fn summary(&self) -> PathBuf {
        self.dir.join("summary.json")
    }
}
