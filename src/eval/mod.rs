//! Scoring a classifier: [`evaluate`] runs a model over a set and returns an [`Evaluation`];
//! [`metrics`] holds accuracy, Matthews correlation and the confusion matrix.

mod evaluation;
pub mod metrics;

pub use evaluation::{evaluate, evaluate_sharded, predictions, Evaluation, MULTI_LABEL_THRESHOLD};
pub use metrics::{accuracy, matthews, ClassScores, ConfusionMatrix};
