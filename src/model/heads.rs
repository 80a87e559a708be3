//! The loss of each problem type, as transformers' `BertForSequenceClassification` computes it
//! when given `labels` (checked on the same logits in `tests/own_data.rs`):
//!
//! | problem type | labels | loss |
//! |---|---|---|
//! | single-label classification | class ids `[batch]` (int64) | cross-entropy over the logits |
//! | regression | values `[batch]` or `[batch, 1]` (float) | mean squared error on the one output |
//! | multi-label classification | 0/1 indicators `[batch, num_labels]` (float) | binary cross-entropy with logits, mean over every entry |
//!
//! Logits are cast to float32 first, so a bf16 forward pass still gets an fp32 loss.

use anyhow::{bail, Result};
use tch::{Kind, Reduction, Tensor};

use crate::data::task::ProblemType;

/// The training loss of `logits` against `labels` for `problem`.
pub fn loss(problem: ProblemType, logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let logits = logits.to_kind(Kind::Float);
    Ok(match problem {
        ProblemType::SingleLabelClassification => logits.cross_entropy_for_logits(labels),
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
    })
}
