//! The kind of head and loss a task trains, with transformers' `problem_type` names, and the
//! cut a multi-label prediction uses. Its own file because the labels, the task inferred from a
//! file, the model's head and the evaluation all name it, and none of them owns it.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// A multi-label model predicts every label whose probability reaches this (transformers'
/// and scikit-learn's usual cut: sigmoid(logit) ≥ 0.5, i.e. logit ≥ 0).
pub const MULTI_LABEL_THRESHOLD: f64 = 0.5;

/// The kind of head and loss a task trains, with transformers' `problem_type` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemType {
    /// One class per row: cross-entropy over `num_labels` logits.
    SingleLabelClassification,
    /// One number per row: mean squared error on one output.
    Regression,
    /// Any set of labels per row: binary cross-entropy on each logit, threshold 0.5.
    MultiLabelClassification,
    /// One tag per word piece (`BertForTokenClassification`): cross-entropy over the pieces
    /// not labelled -100. Not a `problem_type` of transformers' config: the head's class says
    /// it, so it is never written into `config.json` nor read from a flag.
    TokenClassification,
    /// The start and end token of an answer span (`BertForQuestionAnswering`): the mean of
    /// the start and end cross-entropies, positions clamped to the window. Like token
    /// classification, named by the head's class, never by a flag or `config.json`.
    QuestionAnswering,
    /// The original token at each masked position (`BertForMaskedLM`): cross-entropy over the
    /// vocabulary at the positions not labelled -100, perplexity the exponential of its mean.
    /// Named by the head's class, like token classification.
    MaskedLanguageModeling,
}

impl ProblemType {
    /// transformers' name (`config.json`'s `problem_type`).
    pub fn name(self) -> &'static str {
        match self {
            ProblemType::SingleLabelClassification => "single_label_classification",
            ProblemType::Regression => "regression",
            ProblemType::MultiLabelClassification => "multi_label_classification",
            ProblemType::TokenClassification => "token_classification",
            ProblemType::QuestionAnswering => "question_answering",
            ProblemType::MaskedLanguageModeling => "masked_language_modeling",
        }
    }
}

impl std::str::FromStr for ProblemType {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "single_label_classification" | "single-label" | "classification" => {
                ProblemType::SingleLabelClassification
            }
            "regression" => ProblemType::Regression,
            "multi_label_classification" | "multi-label" => ProblemType::MultiLabelClassification,
            other => bail!(
                "unknown problem type {other:?}: use single_label_classification, regression \
                 or multi_label_classification"
            ),
        })
    }
}
