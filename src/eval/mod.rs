//! Scoring a model: [`evaluate`] runs a classifier over a set and returns an [`Evaluation`];
//! [`metrics`] holds accuracy, Matthews correlation, the confusion matrix and the other
//! classification and regression figures; [`entities`] scores a tagger as `seqeval` does;
//! [`squad`] scores extractive answers as SQuAD's official scripts do, after [`answers`] has
//! turned span logits back into text.

pub mod answers;
pub mod entities;
mod evaluation;
pub mod metrics;
pub mod squad;

pub use answers::{answer_questions, postprocess, AnswerSettings, QaPrediction};
pub use entities::{EntityReport, EntityScore};
pub use evaluation::{evaluate, evaluate_sharded, predictions, Evaluation};
pub use metrics::{accuracy, matthews, ClassScores, ConfusionMatrix};
pub use squad::{SquadScores, SquadVersion};
