//! The loss of each problem type, as transformers' `BertForSequenceClassification` computes it
//! when given `labels` (checked on the same logits in `tests/own_data.rs`):
//!
//! | problem type | labels | loss |
//! |---|---|---|
//! | single-label classification | class ids `[batch]` (int64) | cross-entropy over the logits |
//! | regression | values `[batch]` or `[batch, 1]` (float) | mean squared error on the one output |
//! | multi-label classification | 0/1 indicators `[batch, num_labels]` (float) | binary cross-entropy with logits, mean over every entry |
//! | token classification | tag ids `[batch, seq]` (int64, -100 where none) | cross-entropy over the tagged positions |
//! | question answering | start and end `[batch, 2]` (int64) | mean of the start and end cross-entropies, positions clamped |
//!
//! Logits are cast to float32 first, so a bf16 forward pass still gets an fp32 loss.
//!
//! Class weights (for imbalanced classes) weight each row's cross-entropy by its true class,
//! and the mean is over the weights, as `torch.nn.CrossEntropyLoss(weight=…)` computes it;
//! [`balanced_class_weights`] is scikit-learn's `compute_class_weight("balanced")`.

use anyhow::{bail, Result};
use tch::{Kind, Reduction, Tensor};

use crate::data::tagging::IGNORE_INDEX;
use crate::data::ProblemType;

/// The training loss of `logits` against `labels` for `problem`.
pub fn loss(problem: ProblemType, logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    weighted_loss(problem, logits, labels, None)
}

/// [`loss`] with optional class weights (`[num_labels]` float32, single-label only).
pub fn weighted_loss(
    problem: ProblemType,
    logits: &Tensor,
    labels: &Tensor,
    class_weights: Option<&Tensor>,
) -> Result<Tensor> {
    let logits = logits.to_kind(Kind::Float);
    if class_weights.is_some() && problem != ProblemType::SingleLabelClassification {
        bail!(
            "class weights weight the classes of single-label classification, not {}",
            problem.name()
        );
    }
    Ok(match problem {
        ProblemType::SingleLabelClassification => match class_weights {
            None => logits.cross_entropy_for_logits(labels),
            Some(w) => logits.cross_entropy_loss(labels, Some(w), Reduction::Mean, -100, 0.0),
        },
        ProblemType::Regression => {
            if logits.size().last() != Some(&1) {
                bail!(
                    "a regression head has one output; these logits have shape {:?}",
                    logits.size()
                );
            }
            logits
                .reshape([-1])
                .mse_loss(&labels.to_kind(Kind::Float).reshape([-1]), Reduction::Mean)
        }
        ProblemType::MultiLabelClassification => {
            if logits.size() != labels.size() {
                bail!(
                    "multi-label indicators of shape {:?} for logits of shape {:?}",
                    labels.size(),
                    logits.size()
                );
            }
            logits.binary_cross_entropy_with_logits::<Tensor>(
                &labels.to_kind(Kind::Float),
                None,
                None,
                Reduction::Mean,
            )
        }
        ProblemType::TokenClassification => token_classification_loss(&logits, labels)?,
        ProblemType::MaskedLanguageModeling => masked_lm_loss(&logits, labels)?,
        ProblemType::QuestionAnswering => {
            let (start, end) = span_logits(&logits)?;
            question_answering_loss(&start, &end, &labels.select(1, 0), &labels.select(1, 1))?
        }
    })
}

/// scikit-learn's `compute_class_weight("balanced")`: `n / (k · count(c))` for each of the
/// `k` classes, so every class weighs as much in the loss as the others together. A class
/// with no row is an error (its weight would be infinite).
pub fn balanced_class_weights(labels: &[i64], k: usize) -> Result<Vec<f64>> {
    let mut counts = vec![0usize; k];
    for &l in labels {
        match counts.get_mut(l as usize) {
            Some(c) => *c += 1,
            None => bail!("class id {l} is outside the {k} classes"),
        }
    }
    if let Some(empty) = counts.iter().position(|&c| c == 0) {
        bail!("class {empty} has no training row, so it cannot be balanced");
    }
    let n = labels.len() as f64;
    Ok(counts.iter().map(|&c| n / (k as f64 * c as f64)).collect())
}

/// `BertForTokenClassification`'s loss: cross-entropy over every position whose label is not
/// [`IGNORE_INDEX`], averaged over those positions. `logits` `[batch, seq, num_labels]`,
/// `labels` `[batch, seq]` (int64).
pub fn token_classification_loss(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let dims = logits.size();
    let [batch, seq, k] = dims[..] else {
        bail!("token logits must be [batch, seq, num_labels]; got {dims:?}");
    };
    if labels.size() != [batch, seq] {
        bail!(
            "token labels of shape {:?} for logits of shape {dims:?}",
            labels.size()
        );
    }
    Ok(labelled_cross_entropy(logits, labels, k))
}

/// Cross-entropy over `k` outputs at every position whose label is not [`IGNORE_INDEX`],
/// the mean over those positions (`logits` `[…, k]`, `labels` of the leading shape).
fn labelled_cross_entropy(logits: &Tensor, labels: &Tensor, k: i64) -> Tensor {
    logits
        .to_kind(Kind::Float)
        .reshape([-1, k])
        .cross_entropy_loss::<Tensor>(
            &labels.reshape([-1]),
            None,
            Reduction::Mean,
            IGNORE_INDEX,
            0.0,
        )
}

/// `BertForMaskedLM`'s loss: cross-entropy over the vocabulary at the chosen positions (labels
/// other than -100), the mean over them, as transformers computes it. `logits` `[..., vocab]`
/// and `labels` of the leading shape: every position `[batch, seq, vocab]` or only the masked
/// ones `[m, vocab]` (see `BertForMaskedLM::masked_logits`), the same loss either way.
pub fn masked_lm_loss(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let dims = logits.size();
    let vocab = dims.last().copied().unwrap_or(0);
    if dims.len() < 2 || labels.size()[..] != dims[..dims.len() - 1] {
        bail!(
            "masked-LM labels of shape {:?} for logits of shape {dims:?}",
            labels.size()
        );
    }
    Ok(labelled_cross_entropy(logits, labels, vocab))
}

/// A span head's logits `[batch, seq, 2]` as its start and end logits, each `[batch, seq]`.
pub fn span_logits(logits: &Tensor) -> Result<(Tensor, Tensor)> {
    if logits.dim() != 3 || logits.size()[2] != 2 {
        bail!(
            "span logits must be [batch, seq, 2]; got {:?}",
            logits.size()
        );
    }
    Ok((logits.select(2, 0), logits.select(2, 1)))
}

/// `BertForQuestionAnswering`'s loss as transformers computes it: start and end positions
/// (`[batch]`, int64) are clamped to `0..=seq`, `seq` itself (an answer outside the window,
/// past its end) is ignored, and the loss is the mean of the start and end cross-entropies.
pub fn question_answering_loss(
    start_logits: &Tensor,
    end_logits: &Tensor,
    start_positions: &Tensor,
    end_positions: &Tensor,
) -> Result<Tensor> {
    let dims = start_logits.size();
    let [batch, seq] = dims[..] else {
        bail!("start logits must be [batch, seq]; got {dims:?}");
    };
    if end_logits.size() != dims
        || start_positions.size() != [batch]
        || end_positions.size() != [batch]
    {
        bail!(
            "span logits {dims:?} / {:?} and positions {:?} / {:?} do not fit together",
            end_logits.size(),
            start_positions.size(),
            end_positions.size()
        );
    }
    let part = |logits: &Tensor, positions: &Tensor| {
        logits.to_kind(Kind::Float).cross_entropy_loss::<Tensor>(
            &positions.clamp(0, seq),
            None,
            Reduction::Mean,
            seq,
            0.0,
        )
    };
    Ok((part(start_logits, start_positions) + part(end_logits, end_positions)) / 2.0)
}
