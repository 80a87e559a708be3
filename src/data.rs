//! Encoded datasets, the train/validation split and batches (the tutorial's DataLoaders).
//!
//! Sentences are tokenized once and kept unpadded; each batch is padded when it is drawn, so
//! the same set can be batched at the tutorial's fixed 64 or at the batch's longest sentence.
//! [`Sampler::ByLength`] is Hugging Face's `group_by_length` sampler: batches of sentences of
//! similar length, so little of each batch is padding.

use anyhow::{bail, Result};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use tch::{Device, Tensor};

use crate::tokenize::{pad_rows, upload, BertTokenizer, Encoded, Padding};

/// Tokenized sentences with their labels.
#[derive(Debug, Clone)]
pub struct EncodedSet {
    pub ids: Vec<Vec<i64>>,
    pub labels: Vec<i64>,
    pub pad_id: i64,
    pub max_len: usize,
    pub padding: Padding,
}

/// One batch on the training device.
#[derive(Debug)]
pub struct Batch {
    pub inputs: Encoded,
    pub labels: Tensor,
    /// Real tokens in the batch (the rest of `rows × width` is padding).
    pub tokens: usize,
    /// `rows × width`: the positions the model computes over.
    pub positions: usize,
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

/// Order in which a set is batched. The random orders carry their seed, so a pass is
/// reproducible from the seed alone (a resumed run redraws an epoch's order from it).
#[derive(Debug, Clone, Copy)]
pub enum Sampler {
    /// A fresh shuffle (training).
    Random { seed: u64 },
    /// File order (evaluation).
    Sequential,
    /// Hugging Face's `LengthGroupedSampler` (`group_by_length=True`): a random permutation
    /// cut into megabatches of `min(n / (4 · batch), 50) · batch` rows, each sorted by length,
    /// longest first, and the longest row of all moved to the very front, so the first batch
    /// is the largest (an out-of-memory error shows at once).
    ByLength { seed: u64 },
}

/// The order [`Sampler::ByLength`] draws: `lengths[i]` is row `i`'s length.
pub fn length_grouped_order(lengths: &[usize], batch_size: usize, rng: &mut StdRng) -> Vec<usize> {
    let batch_size = batch_size.max(1);
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.shuffle(rng);
    let multiple = (lengths.len() / (4 * batch_size)).clamp(1, 50);
    let mut megabatches: Vec<Vec<usize>> = order
        .chunks(multiple * batch_size)
        .map(|chunk| {
            let mut mb = chunk.to_vec();
            // Stable, like Python's `sorted(..., reverse=True)`.
            mb.sort_by(|&a, &b| lengths[b].cmp(&lengths[a]));
            mb
        })
        .collect();
    // The first megabatch whose head is the longest (torch.argmax returns the first maximum).
    let mut longest = 0;
    for (i, mb) in megabatches.iter().enumerate() {
        if lengths[mb[0]] > lengths[megabatches[longest][0]] {
            longest = i;
        }
    }
    if longest != 0 {
        let head = megabatches[longest][0];
        megabatches[longest][0] = megabatches[0][0];
        megabatches[0][0] = head;
    }
    megabatches.concat()
}

impl EncodedSet {
    pub fn new(
        tokenizer: &BertTokenizer,
        sentences: &[String],
        labels: &[i64],
        max_len: usize,
        padding: Padding,
    ) -> Result<Self> {
        if sentences.len() != labels.len() {
            bail!("{} sentences but {} labels", sentences.len(), labels.len());
        }
        Ok(EncodedSet {
            ids: tokenizer.encode_truncated(sentences, max_len)?,
            labels: labels.to_vec(),
            pad_id: tokenizer.pad_id,
            max_len,
            padding,
        })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The rows at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Self {
        EncodedSet {
            ids: indices.iter().map(|&i| self.ids[i].clone()).collect(),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            ..self.clone()
        }
    }

    /// The first `n` rows (quick runs and tests).
    pub fn take(&self, n: usize) -> Self {
        self.subset(&(0..n.min(self.len())).collect::<Vec<_>>())
    }

    /// A seeded random split: `floor((1 - val_fraction) · n)` rows for training, the rest for
    /// validation (8,551 CoLA sentences → 7,695 / 856, i.e. 241 batches of 32).
    pub fn split(&self, val_fraction: f64, seed: u64) -> (Self, Self) {
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.shuffle(&mut StdRng::seed_from_u64(seed));
        let n_train = ((1.0 - val_fraction) * self.len() as f64).floor() as usize;
        (
            self.subset(&order[..n_train]),
            self.subset(&order[n_train..]),
        )
    }

    pub fn num_batches(&self, batch_size: usize) -> usize {
        self.len().div_ceil(batch_size.max(1))
    }

    /// All batches of one pass, moved to `device`.
    pub fn batches(&self, batch_size: usize, sampler: Sampler, device: Device) -> Vec<Batch> {
        self.batch_rows(batch_size, sampler)
            .iter()
            .map(|rows| self.batch_of(rows, device))
            .collect()
    }

    /// The row indices of each batch of one pass, in the sampler's order.
    pub fn batch_rows(&self, batch_size: usize, sampler: Sampler) -> Vec<Vec<usize>> {
        let order: Vec<usize> = match sampler {
            Sampler::Sequential => (0..self.len()).collect(),
            Sampler::Random { seed } => {
                let mut order: Vec<usize> = (0..self.len()).collect();
                order.shuffle(&mut StdRng::seed_from_u64(seed));
                order
            }
            Sampler::ByLength { seed } => length_grouped_order(
                &self.lengths(),
                batch_size,
                &mut StdRng::seed_from_u64(seed),
            ),
        };
        order
            .chunks(batch_size.max(1))
            .map(<[usize]>::to_vec)
            .collect()
    }

    /// The sampler training uses for this set, drawing from `seed`: length-grouped for
    /// [`Padding::Bucket`], a plain shuffle otherwise.
    pub fn training_sampler(&self, seed: u64) -> Sampler {
        match self.padding {
            Padding::Bucket => Sampler::ByLength { seed },
            Padding::Fixed | Padding::Longest => Sampler::Random { seed },
        }
    }

    /// Each row's length in tokens (after the cut at `max_len`), for a histogram.
    pub fn lengths(&self) -> Vec<usize> {
        self.ids.iter().map(Vec::len).collect()
    }

    /// The batch of the given rows, padded per the set's [`Padding`], on `device`.
    pub fn batch_of(&self, rows: &[usize], device: Device) -> Batch {
        let ids: Vec<&[i64]> = rows.iter().map(|&r| self.ids[r].as_slice()).collect();
        let labels: Vec<i64> = rows.iter().map(|&r| self.labels[r]).collect();
        let inputs = pad_rows(&ids, self.pad_id, self.max_len, self.padding);
        let width = inputs.seq_len().max(0) as usize;
        Batch {
            tokens: ids.iter().map(|r| r.len().min(width)).sum(),
            positions: rows.len() * width,
            inputs: inputs.to_device(device),
            labels: upload(&Tensor::from_slice(&labels), device),
        }
    }
}
