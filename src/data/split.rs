//! From a CoLA file to an [`EncodedSet`] through the own-data path ([`Cola::task`]): one split
//! tokenized, or the training file divided
//! into training and validation sets the way the tutorial does (90/10, seeded). [`hold_out`]
//! is the one place that split is made; the CLI, the notebook and the bench all call it.

use std::path::Path;

use anyhow::Result;

use crate::data::cola::{Cola, Split};
use crate::data::tokenizer::{BertTokenizer, Padding};
use crate::data::EncodedSet;

/// Share of the training file held out for validation.
pub const VALIDATION_FRACTION: f64 = 0.1;

/// Tokenizes one CoLA split of the `cola_public` folder `data_dir`, keeping at most `limit`
/// sentences (quick runs).
pub fn encode_split(
    tokenizer: &BertTokenizer,
    data_dir: impl AsRef<Path>,
    split: Split,
    max_len: usize,
    padding: Padding,
    limit: Option<usize>,
) -> Result<EncodedSet> {
    let cola = Cola::load_split(data_dir, split)?;
    let set = EncodedSet::from_examples(tokenizer, &cola.examples()?, max_len, padding)?;
    Ok(match limit {
        Some(n) => set.take(n),
        None => set,
    })
}

/// The training file split 90/10 into training and validation sets, seeded; with `limit`,
/// at most `limit` training sentences and a ninth as many for validation.
pub fn train_validation(
    tokenizer: &BertTokenizer,
    data_dir: impl AsRef<Path>,
    max_len: usize,
    padding: Padding,
    seed: u64,
    limit: Option<usize>,
) -> Result<(EncodedSet, EncodedSet)> {
    let all = encode_split(tokenizer, data_dir, Split::Train, max_len, padding, None)?;
    Ok(hold_out(&all, seed, limit))
}

/// The tutorial's split of an encoded training file: [`VALIDATION_FRACTION`] of it held out
/// for validation, drawn with `seed`; with `limit`, at most `limit` training sentences and a
/// ninth as many (at least one) for validation, as a quick run keeps.
pub fn hold_out(all: &EncodedSet, seed: u64, limit: Option<usize>) -> (EncodedSet, EncodedSet) {
    let (train, val) = all.split(VALIDATION_FRACTION, seed);
    match limit {
        Some(n) => (train.take(n), val.take((n / 9).max(1))),
        None => (train, val),
    }
}
