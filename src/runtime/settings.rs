//! What the environment chooses: every `BERT_FINETUNE_*` variable (and `COLA_DIR`) is read
//! here, so a newcomer finds in one file each knob that changes a run without an argument.
//!
//! The CLI and the notebook both ask these functions, so the same shell gives the same model,
//! data and device to either.
//!
//! Three lookups live with the code they steer: `BERT_FINETUNE_MODEL` and
//! `BERT_FINETUNE_DEFAULT_MODEL` in `model::choice` (the default model is chosen where the hub
//! cache is known, above this floor) and, only in builds with the tests' `fault-injection`
//! feature, `BERT_FINETUNE_CHECKPOINT_PAUSE_MS` in `train::checkpoint`. torchrun's variables,
//! with `BERT_FINETUNE_DIST` and `BERT_FINETUNE_DIST_TIMEOUT`, are read by
//! [`crate::runtime::distributed`]. The hub's `HF_*` variables stay in `model::hub`: they are
//! `huggingface_hub`'s own settings, read the way Python reads them, not this project's.

use std::path::{Path, PathBuf};

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
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}
