//! [`EpochBatches`]: one epoch's batches, as the sampler orders them, each built (padded,
//! masked for masked language modelling, moved to the device) only when the loop reaches it.
//! An epoch holds its row numbers, not its tensors, so a corpus of millions of rows trains in
//! the memory of a few batches.

use std::sync::Arc;

use tch::Device;

use crate::data::{Batch, EncodedSet};

/// One epoch's batches; iterate `&batches` for each [`Batch`] in order.
pub struct EpochBatches {
    set: Arc<EncodedSet>,
    rows: Vec<Vec<usize>>,
    /// The epoch's seed: masked language modelling draws its masks from it.
    seed: u64,
    device: Device,
}

impl EpochBatches {
    /// The batches of `rows` (each batch's row numbers in `set`) in the pass of `seed`.
    pub fn new(set: Arc<EncodedSet>, rows: Vec<Vec<usize>>, seed: u64, device: Device) -> Self {
        EpochBatches {
            set,
            rows,
            seed,
            device,
        }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Batch `i`, built now.
    pub fn get(&self, i: usize) -> Batch {
        self.set
            .batch_of_pass(&self.rows[i], self.seed, self.device)
    }

    /// Rows over all batches.
    pub fn sentences(&self) -> usize {
        self.rows.iter().map(Vec::len).sum()
    }

    /// Real tokens and padded positions over all batches, from the rows' lengths alone.
    pub fn tokens_and_positions(&self) -> (usize, usize) {
        let mut tokens = 0;
        let mut positions = 0;
        for rows in &self.rows {
            let lengths: Vec<usize> = rows.iter().map(|&r| self.set.ids.row_len(r)).collect();
            let width = self.set.padded_width(&lengths);
            tokens += lengths.iter().map(|&l| l.min(width)).sum::<usize>();
            positions += rows.len() * width;
        }
        (tokens, positions)
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = Batch> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

impl std::fmt::Debug for EpochBatches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "EpochBatches {{ batches: {}, rows: {}, seed: {} }}",
            self.len(),
            self.sentences(),
            self.seed
        )
    }
}

impl<'a> IntoIterator for &'a EpochBatches {
    type Item = Batch;
    type IntoIter = Box<dyn ExactSizeIterator<Item = Batch> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}
