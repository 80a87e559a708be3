//! [`EpochLosses`]: the losses of one epoch, kept on the device as the steps return them and
//! read back (one host sync) only when a progress line or the end of the epoch needs them, so
//! a GPU is never stalled once per step just to log. A non-finite loss is an error at the
//! next read, naming its step.

use std::time::Instant;

use anyhow::{bail, Result};
use tch::Tensor;

use super::epoch::EpochBatches;
use crate::runtime::distributed::ProcessGroup;

/// The losses of one epoch's batches; see the module documentation.
pub struct EpochLosses {
    epoch: usize,
    /// Steps taken before this epoch, to name a diverged step by its run-wide number.
    first_step: usize,
    batches: usize,
    sentences: usize,
    padded_positions: f64,
    positions: usize,
    pending: Vec<Tensor>,
    read: Vec<f64>,
    started: Instant,
}

impl EpochLosses {
    /// Starts epoch `epoch` (1-based) over `batches`, after `first_step` steps of earlier
    /// epochs; its clock starts now.
    pub fn new(epoch: usize, first_step: usize, batches: &EpochBatches) -> Self {
        let (tokens, positions) = batches.tokens_and_positions();
        EpochLosses {
            epoch,
            first_step,
            batches: batches.len(),
            sentences: batches.sentences(),
            padded_positions: positions.saturating_sub(tokens) as f64,
            positions,
            pending: Vec::with_capacity(batches.len()),
            read: Vec::new(),
            started: Instant::now(),
        }
    }

    /// The loss of the next batch, as the step returned it (on the device).
    pub fn push(&mut self, loss: Tensor) {
        self.pending.push(loss);
    }

    /// Every loss so far, read back in one copy; the first non-finite one is an error naming
    /// its step.
    pub fn read(&mut self) -> Result<&[f64]> {
        if !self.pending.is_empty() {
            let values: Vec<f64> =
                Vec::try_from(Tensor::stack(&self.pending, 0).to_kind(tch::Kind::Double))?;
            self.pending.clear();
            let at = self.first_step + self.read.len();
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                bail!(
                    "training diverged: the loss at step {} (1-based, counting all epochs) is \
                     {}; try a lower learning rate",
                    at + i + 1,
                    values[i]
                );
            }
            self.read.extend(values);
        }
        Ok(&self.read)
    }

    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// Batches in this epoch.
    pub fn batches(&self) -> usize {
        self.batches
    }

    /// Steps taken so far in this epoch (read back or not).
    pub fn done(&self) -> usize {
        self.read.len() + self.pending.len()
    }

    /// Sentences in this epoch's batches.
    pub fn sentences(&self) -> usize {
        self.sentences
    }

    /// Padding positions and all positions of this epoch's batches.
    pub fn padded_positions(&self) -> f64 {
        self.padded_positions
    }

    pub fn positions(&self) -> usize {
        self.positions
    }

    /// Seconds since the epoch started.
    pub fn elapsed_seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// In a data-parallel run: every loss becomes the mean over the ranks of that step's
    /// loss (one all-reduce for the epoch), so the history holds the loss of the global batch,
    /// and the sentences count every rank's.
    pub fn average_over(&mut self, group: &ProcessGroup) -> Result<()> {
        let values = self.read()?.to_vec();
        if values.is_empty() {
            return Ok(());
        }
        let t = Tensor::from_slice(&values);
        group.all_reduce_sum(&[t.shallow_clone()])?;
        let world = group.world_size() as f64;
        self.read = Vec::<f64>::try_from(t)?.iter().map(|v| v / world).collect();
        self.sentences *= group.world_size();
        Ok(())
    }

    /// Losses read back so far (see [`EpochLosses::read`]).
    pub fn read_so_far(&self) -> &[f64] {
        &self.read
    }
}
