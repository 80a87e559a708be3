//! What the environment chooses: every `BERT_FINETUNE_*` variable (and `COLA_DIR`) is read
//! here, so a newcomer finds in one file each knob that changes a run without an argument.
//!
//! The CLI and the notebook both ask these functions, so the same shell gives the same model,
//! data and device to either.
//!
//! Two lookups still live with the code they steer, until their modules are reworked:
//! `BERT_FINETUNE_DEFAULT_MODEL` in [`crate::model::default_checkpoint`] and, only in builds
//! with the tests' `fault-injection` feature, `BERT_FINETUNE_CHECKPOINT_PAUSE_MS` in
//! `train::checkpoint`. torchrun's variables, with `BERT_FINETUNE_DIST` and
//! `BERT_FINETUNE_DIST_TIMEOUT`, are read by [`crate::runtime::distributed`]. The hub's `HF_*` variables
//! stay in [`crate::model::hub::HubSettings`]: they are `huggingface_hub`'s own settings,
//! read the way Python reads them, not this project's.

use std::path::{Path, PathBuf};

/// Which checkpoint to fine-tune and why.
#[derive(Debug, Clone)]
pub struct ModelChoice {
    /// A folder or a hub id, as `from_pretrained` takes it.
    pub name_or_dir: String,
    pub reason: String,
}

impl std::fmt::Display for ModelChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Using {}: {}", self.name_or_dir, self.reason)
    }
}

/// `$BERT_FINETUNE_MODEL` if set (downloaded when first used, like any id the user names);
/// else bert-base-uncased when the Hugging Face cache already holds all of it; else the
/// embedded all-MiniLM-L6-v2. The choice itself never touches the network.
pub fn choose_model() -> ModelChoice {
    if let Some(name) = var("BERT_FINETUNE_MODEL") {
        return ModelChoice {
            name_or_dir: name,
            reason: "chosen by $BERT_FINETUNE_MODEL".into(),
        };
    }
    if crate::model::hub::cached("bert-base-uncased").is_some() {
        return ModelChoice {
            name_or_dir: "bert-base-uncased".into(),
            reason: "the tutorial's model, found in the local Hugging Face cache".into(),
        };
    }
    ModelChoice {
        name_or_dir: crate::model::default_checkpoint().display().to_string(),
        reason: format!(
            "bert-base-uncased is not in the Hugging Face cache ({}), so the embedded \
             all-MiniLM-L6-v2 is used",
            crate::model::hub::cache_dir().display()
        ),
    }
}

/// Where the project keeps CoLA: `$COLA_DIR` when set, else `data/cola_public` in the project.
///
/// Anchored at the crate's own folder so that the CLI, the tests and a notebook running in
/// `notebooks/` all find the same files.
pub fn cola_dir() -> PathBuf {
    match std::env::var_os("COLA_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => project_dir().join("data/cola_public"),
    }
}

/// The project folder (where `Cargo.toml` is), for paths that must not depend on the current
/// directory: a notebook runs in `notebooks/`, the CLI wherever it is started.
pub fn project_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// True when `BERT_FINETUNE_QUICK=1`: notebooks and scripts then use a small subset and one
/// epoch, so a test can execute them in minutes.
pub fn quick_mode() -> bool {
    var("BERT_FINETUNE_QUICK").is_some_and(|v| v == "1")
}

/// The name of the setting that keeps a run on the CPU, when it is set: `BERT_FINETUNE_DEVICE=cpu`
/// (for tests and comparisons that must not depend on the machine). Any other value leaves the
/// choice to [`crate::runtime::device::detect`].
pub fn cpu_requested() -> Option<&'static str> {
    var("BERT_FINETUNE_DEVICE")
        .is_some_and(|v| v.eq_ignore_ascii_case("cpu"))
        .then_some("BERT_FINETUNE_DEVICE=cpu")
}

/// A variable's value, `None` when unset or blank (an exported empty variable means "unset"
/// to a shell user, so it must not choose anything).
fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}
