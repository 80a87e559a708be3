//! The one training step, as the tutorial's loop body reads: forward with dropout, cross
//! entropy, backward, clip, AdamW, schedule. The CLI, the notebook, the bench and the tests all
//! call this function.

use anyhow::Result;
use tch::{Kind, Tensor};

use crate::data::Batch;
use crate::model::BertForSequenceClassification;
use crate::optim::AdamW;
use crate::precision::Precision;

/// One optimizer step on `batch`; returns the (detached) loss on the device, without a host
/// sync.
///
/// Under [`Precision::Bf16`] only the forward pass runs in autocast; the logits are cast to
/// float32 before the loss, and the backward pass and the update see float32 gradients and
/// weights.
pub fn training_step(
    model: &BertForSequenceClassification,
    batch: &Batch,
    optimizer: &mut AdamW,
    precision: Precision,
) -> Result<Tensor> {
    let device = model.vs.device();
    let logits = {
        let _autocast = precision.autocast(device)?;
        model.logits(&batch.inputs, true)
    };
    let loss = logits
        .to_kind(Kind::Float)
        .cross_entropy_for_logits(&batch.labels);
    let _grad_norm = optimizer.backward_step(&loss)?;
    Ok(loss.detach())
}
