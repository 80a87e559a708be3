//! BERT with its task heads (sequence classification, token classification, question
//! answering), with Hugging Face names, config and checkpoint format;
//! which checkpoint a run uses when none is named ([`choice`]) and where it comes from ([`hub`]).

pub mod bert;
pub mod checkpoint;
pub mod choice;
pub mod classifier;
pub mod config;
pub mod disentangled;
pub mod entities;
pub mod family;
pub mod fill_mask;
pub mod heads;
pub mod hub;
pub mod layers;
pub mod masked_lm;
pub mod modernbert;
pub mod modernbert_config;
mod packing;
pub mod params;
pub mod predict;
pub mod pretrained;
pub mod question_answering;
pub mod shapes;
pub mod task_model;
pub mod token_classifier;
pub mod weights;

pub use bert::{BertModel, BertModelOutput};
pub use checkpoint::BertCheckpoint;
pub use choice::{choose_model, default_checkpoint, ModelChoice};
pub use classifier::BertForSequenceClassification;
pub use config::{BertConfig, HiddenAct, PositionEmbeddingType};
pub use family::Family;
pub use masked_lm::BertForMaskedLM;
pub use params::{DecayGroup, DecayGroups, ParameterListing};
pub use question_answering::BertForQuestionAnswering;
pub use task_model::TaskModel;
pub use token_classifier::BertForTokenClassification;
pub use weights::LoadReport;
