//! The one training step, line for line the body of the tutorial's loop. The CLI's loop, the
//! notebook's loop, the bench and the tests all call this function.

use anyhow::Result;
use tch::{Kind, Tensor};

use crate::data::Batch;
use crate::model::BertForSequenceClassification;
use crate::optim::{FusedAdamW, LinearSchedule};
use crate::precision::Precision;

/// One optimizer step on `batch`; returns the (detached) loss on the device, without a host
/// sync, so a GPU never waits for the log.
///
/// Under [`Precision::Bf16`] only the forward pass runs in autocast; the logits are cast to
/// float32 before the loss, and the backward pass and the update see float32 gradients and
/// weights.
pub fn training_step(
    model: &BertForSequenceClassification,
    batch: &Batch,
    optimizer: &mut FusedAdamW,
    scheduler: &mut LinearSchedule,
    precision: Precision,
) -> Result<Tensor> {
    optimizer.zero_grad()?;
    let logits = {
        let _autocast = precision.autocast(model.vs.device())?;
        model.logits(&batch.inputs, true) // dropout on
    };
    let loss = logits
        .to_kind(Kind::Float)
        .cross_entropy_for_logits(&batch.labels);
    loss.f_backward()?;
    let _norm_before_clipping = optimizer.clip_grad_norm()?;
    optimizer.step()?;
    scheduler.step(optimizer);
    Ok(loss.detach())
}
