//! One batch as a training step takes it: the padded inputs on the device, the labels, and
//! the counts of real tokens and positions (for the padded share a run reports).

use tch::{Device, Tensor};

use super::tokenizer::{upload, Encoded};

/// One batch on the training device.
#[derive(Debug)]
pub struct Batch {
    pub inputs: Encoded,
    pub labels: Tensor,
    /// Real tokens in the batch (the rest of `rows × width` is padding).
    pub tokens: usize,
    /// `rows × width`: the positions the model computes over.
    pub positions: usize,
    /// A masked-LM batch's flat positions (`row × width + column`) whose label is not -100,
    /// found on the host as the batch is built, so the head projects those alone without
    /// asking the device which they are (a training step copies nothing back).
    pub labelled: Option<Tensor>,
}

impl Batch {
    /// Sentences in the batch.
    pub fn len(&self) -> usize {
        self.labels.size().first().map_or(0, |&n| n as usize)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The same batch on `device` (non-blocking copies).
    pub fn to_device(&self, device: Device) -> Batch {
        Batch {
            inputs: self.inputs.to_device(device),
            labels: upload(&self.labels, device),
            tokens: self.tokens,
            positions: self.positions,
            labelled: self.labelled.as_ref().map(|t| upload(t, device)),
        }
    }
}

/// Share of `positions` that are padding, over a list of batches.
pub fn padded_share(batches: &[Batch]) -> f64 {
    let positions: usize = batches.iter().map(|b| b.positions).sum();
    let tokens: usize = batches.iter().map(|b| b.tokens).sum();
    if positions == 0 {
        0.0
    } else {
        1.0 - tokens as f64 / positions as f64
    }
}
