//! Encoded datasets, the train/validation split and batches (the tutorial's DataLoaders).
//!
//! Sentences are tokenized once and kept unpadded; each batch is padded when it is drawn, so
//! the same set can be batched at the tutorial's fixed 64 or at the batch's longest sentence.

use anyhow::{bail, Result};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use tch::{Device, Tensor};

use crate::tokenize::{pad_rows, BertTokenizer, Encoded, Padding};

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
}

/// Order in which a set is batched.
#[derive(Debug, Clone, Copy)]
pub enum Sampler {
    /// A fresh shuffle from the given generator (training).
    Random,
    /// File order (evaluation).
    Sequential,
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
    pub fn batches(
        &self,
        batch_size: usize,
        sampler: Sampler,
        rng: &mut StdRng,
        device: Device,
    ) -> Vec<Batch> {
        let mut order: Vec<usize> = (0..self.len()).collect();
        if let Sampler::Random = sampler {
            order.shuffle(rng);
        }
        order
            .chunks(batch_size.max(1))
            .map(|chunk| self.batch(chunk, device))
            .collect()
    }

    fn batch(&self, rows: &[usize], device: Device) -> Batch {
        let ids: Vec<&[i64]> = rows.iter().map(|&r| self.ids[r].as_slice()).collect();
        let labels: Vec<i64> = rows.iter().map(|&r| self.labels[r]).collect();
        Batch {
            inputs: pad_rows(&ids, self.pad_id, self.max_len, self.padding).to_device(device),
            labels: Tensor::from_slice(&labels).to_device(device),
        }
    }
}
