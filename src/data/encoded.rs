//! Encoded sets: sentences tokenized once, batched on demand (the tutorial's TensorDataset and
//! DataLoader).
//!
//! Sentences are tokenized once and kept unpadded; each batch is padded when it is drawn, so
//! the same set can be batched at the tutorial's fixed 64 or at the batch's longest sentence.
//! [`Sampler::ByLength`] is Hugging Face's `group_by_length` sampler: batches of sentences of
//! similar length, so little of each batch is padding.

use anyhow::{bail, Context, Result};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use tch::Device;

use super::batch::Batch;
use super::labels::Labels;
use super::masking::Masking;
use super::rows::Rows;
use super::sampler::{length_grouped_order, Sampler};
use super::task::Examples;

use super::tagging::IGNORE_INDEX;
use super::tokenizer::{pad_rows_with_types, upload, BertTokenizer, Padding};
use crate::runtime::display::Table;

/// Tokenized sentences with their labels.
#[derive(Debug, Clone)]
pub struct EncodedSet {
    /// Each row's ids, in memory or in a token store on disk (see [`Rows`]).
    pub ids: Rows,
    /// Token type ids of each row, for pairs (0 for the first text, 1 for the second); `None`
    /// for single texts (all 0).
    pub type_ids: Option<Vec<Vec<i64>>>,
    /// Class ids, values or indicators: the problem type the set trains.
    pub labels: Labels,
    pub pad_id: i64,
    pub max_len: usize,
    pub padding: Padding,
    /// Per row: whether its text was longer than `max_len` tokens and was cut (a run reports
    /// the count, as a user of `--max-len` wants to know what the cut costs). Empty for a
    /// set read from a token store, whose build counted its cuts.
    pub cut: Vec<bool>,
    /// Masked language modelling: how each pass masks the rows (see [`EncodedSet::masked`]);
    /// `None` for every other task, and for a pass already masked.
    pub masking: Option<Masking>,
}

impl EncodedSet {
    /// Single sentences with their labels (class ids for CoLA; any [`Labels`]).
    pub fn new(
        tokenizer: &BertTokenizer,
        sentences: &[String],
        labels: impl Into<Labels>,
        max_len: usize,
        padding: Padding,
    ) -> Result<Self> {
        let labels = labels.into();
        if sentences.len() != labels.len() {
            bail!("{} sentences but {} labels", sentences.len(), labels.len());
        }
        let (ids, cut) = tokenizer.encode_truncated_marking_cuts(sentences, max_len)?;
        Ok(EncodedSet {
            ids: ids.into(),
            type_ids: None,
            labels,
            pad_id: tokenizer.pad_id,
            max_len,
            padding,
            cut,
            masking: None,
        })
    }

    /// A file's examples, single texts or pairs, with whatever labels their task has.
    pub fn from_examples(
        tokenizer: &BertTokenizer,
        examples: &Examples,
        max_len: usize,
        padding: Padding,
    ) -> Result<Self> {
        match &examples.second {
            Some(second) => Self::pairs(
                tokenizer,
                &examples.first,
                second,
                &examples.labels,
                max_len,
                padding,
            ),
            None => Self::new(
                tokenizer,
                &examples.first,
                &examples.labels,
                max_len,
                padding,
            ),
        }
    }

    /// Pairs of texts with their labels, encoded as transformers' tokenizer encodes pairs
    /// (see [`BertTokenizer::encode_pairs`]).
    pub fn pairs(
        tokenizer: &BertTokenizer,
        first: &[String],
        second: &[String],
        labels: impl Into<Labels>,
        max_len: usize,
        padding: Padding,
    ) -> Result<Self> {
        let labels = labels.into();
        if first.len() != labels.len() {
            bail!("{} pairs but {} labels", first.len(), labels.len());
        }
        let (rows, cut) = tokenizer.encode_pairs_marking_cuts(first, second, max_len)?;
        let (ids, type_ids): (Vec<_>, _) = rows.into_iter().unzip();
        Ok(EncodedSet {
            ids: ids.into(),
            type_ids: Some(type_ids),
            labels,
            pad_id: tokenizer.pad_id,
            max_len,
            padding,
            cut,
            masking: None,
        })
    }

    /// Sentences given as words with a tag id per word, for token classification: the word
    /// pieces with the tags aligned to them as run_ner aligns them (see
    /// [`tagging::align`](super::tagging::align); `label_all_tokens` is its `b_to_i` map). A row
    /// counts as cut when `max_len` took the first piece of one of its words.
    pub fn tagged(
        tokenizer: &BertTokenizer,
        words: &[Vec<String>],
        tags: &[Vec<i64>],
        max_len: usize,
        padding: Padding,
        label_all_tokens: Option<&[i64]>,
    ) -> Result<Self> {
        if words.len() != tags.len() {
            bail!("{} sentences but {} tag lists", words.len(), tags.len());
        }
        let mut ids = Vec::with_capacity(words.len());
        let mut labels = Vec::with_capacity(words.len());
        let mut cut = Vec::with_capacity(words.len());
        for (i, (w, t)) in words.iter().zip(tags).enumerate() {
            let aligned = super::tagging::align(tokenizer, w, t, max_len, label_all_tokens)
                .with_context(|| format!("sentence {}", i + 1))?;
            ids.push(aligned.ids);
            labels.push(aligned.labels);
            cut.push(aligned.words_cut > 0);
        }
        Ok(EncodedSet {
            ids: ids.into(),
            type_ids: None,
            labels: Labels::Tags(labels),
            pad_id: tokenizer.pad_id,
            max_len,
            padding,
            cut,
            masking: None,
        })
    }

    /// Question-answering windows (see [`squad::features`](super::squad::features)) with
    /// their answers' first and last tokens, for training and for scoring.
    pub fn windows(
        features: &[super::squad::QaFeature],
        pad_id: i64,
        max_len: usize,
        padding: Padding,
    ) -> Self {
        EncodedSet {
            ids: Rows::Memory(features.iter().map(|f| f.ids.clone()).collect()),
            type_ids: Some(features.iter().map(|f| f.type_ids.clone()).collect()),
            labels: Labels::Spans(features.iter().map(|f| (f.start, f.end)).collect()),
            pad_id,
            max_len,
            padding,
            cut: vec![false; features.len()],
            masking: None,
        }
    }

    /// Texts for masked language modelling: each row's ids, masked afresh for every pass
    /// when its batches are drawn (see [`EncodedSet::batch_of_pass`]).
    pub fn for_masked_lm(
        tokenizer: &BertTokenizer,
        texts: &[String],
        max_len: usize,
        padding: Padding,
        masking: Masking,
    ) -> Result<Self> {
        if masking.whole_word {
            bail!(
                "whole-word masking reads word boundaries from a token store: tokenize the texts \
                 with data::corpus::Corpus::tokenize and use EncodedSet::from_store"
            );
        }
        let (ids, cut) = tokenizer.encode_truncated_marking_cuts(texts, max_len)?;
        Ok(Self::to_mask(
            ids.into(),
            cut,
            tokenizer.pad_id,
            max_len,
            padding,
            masking,
        ))
    }

    /// Rows of a [`TokenStore`](super::store::TokenStore) (a corpus tokenized onto disk) for
    /// masked language modelling: read in place, masked as each batch is drawn, so the set
    /// takes the same memory whatever the number of rows.
    pub fn from_store(
        store: std::sync::Arc<super::store::TokenStore>,
        pad_id: i64,
        max_len: usize,
        padding: Padding,
        masking: Masking,
    ) -> Self {
        // The store's rows were cut to max_len when tokenized (a text that was cut is not
        // marked: grouped blocks are cut by design).
        let rows = Rows::stored(store);
        Self::to_mask(rows, Vec::new(), pad_id, max_len, padding, masking)
    }

    fn to_mask(
        ids: Rows,
        cut: Vec<bool>,
        pad_id: i64,
        max_len: usize,
        padding: Padding,
        masking: Masking,
    ) -> Self {
        EncodedSet {
            labels: Labels::ToMask(ids.len()),
            ids,
            type_ids: None,
            pad_id,
            max_len,
            padding,
            cut,
            masking: Some(masking),
        }
    }

    /// One pass's draw of a masked-LM set, in memory: row `r` masked by the generator of
    /// `(seed, r)` alone, so the draw does not depend on batching, sharding or where a run
    /// resumed (the batches of [`EncodedSet::batch_of_pass`] draw the same masks). The result
    /// holds the masked ids and their labels, as an evaluation reads them; a set without
    /// masking comes back as is.
    pub fn masked(&self, seed: u64) -> Self {
        let Some(masking) = &self.masking else {
            return self.clone();
        };
        let (ids, labels): (Vec<_>, _) = (0..self.ids.len())
            .map(|r| self.mask_row(masking, r, &self.ids.row(r), seed))
            .unzip();
        EncodedSet {
            ids: ids.into(),
            type_ids: self.type_ids.clone(),
            labels: Labels::Tokens(labels),
            pad_id: self.pad_id,
            max_len: self.max_len,
            padding: self.padding,
            cut: self.cut.clone(),
            masking: None,
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// How row `r` is masked in the pass of `seed` (masked-LM sets), as a table: each token,
    /// what the model reads there, and the label the loss reads (the original token where the
    /// row was chosen).
    pub fn explain_masks(&self, tokenizer: &BertTokenizer, r: usize, seed: u64) -> Result<Table> {
        let Some(masking) = &self.masking else {
            bail!("this set is not masked-LM's: it has no masking");
        };
        if r >= self.len() {
            bail!("row {r} is outside the set's {} rows", self.len());
        }
        let row = self.ids.row(r);
        let (ids, labels) = self.mask_row(masking, r, &row, seed);
        let chosen = labels.iter().filter(|&&l| l != IGNORE_INDEX).count();
        let tokens = tokenizer.convert_ids_to_tokens(&row);
        let read = tokenizer.convert_ids_to_tokens(&ids);
        let mut table = Table::new(
            format!(
                "Row {r}: {chosen} of {} tokens chosen (pass seed {seed})",
                row.len()
            ),
            &["position", "token", "the model reads", "label"],
        );
        for j in 0..row.len() {
            let (what, label) = if labels[j] == IGNORE_INDEX {
                (read[j].clone(), "-100".to_string())
            } else if ids[j] == masking.mask_id {
                (read[j].clone(), tokens[j].clone())
            } else if ids[j] == row[j] {
                (format!("{} (kept)", read[j]), tokens[j].clone())
            } else {
                (format!("{} (random)", read[j]), tokens[j].clone())
            };
            table.push_row([j.to_string(), tokens[j].clone(), what, label]);
        }
        Ok(table)
    }

    /// Row `r` (whose ids are `row`) masked in the pass of `seed`: by words when the masking
    /// asks for it and the rows know their words, by tokens otherwise.
    fn mask_row(
        &self,
        masking: &Masking,
        r: usize,
        row: &[i64],
        seed: u64,
    ) -> (Vec<i64>, Vec<i64>) {
        let mut rng = Masking::row_generator(seed, r);
        let starts = if masking.whole_word {
            self.ids.word_starts(r)
        } else {
            None
        };
        match starts {
            Some(starts) => masking.mask_row_in_words(row, row.len(), &starts, &mut rng),
            None => masking.mask_row(row, row.len(), &mut rng),
        }
    }

    /// Rows cut at `max_len`.
    pub fn truncated(&self) -> usize {
        self.cut.iter().filter(|&&c| c).count()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The rows at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Self {
        EncodedSet {
            ids: self.ids.subset(indices),
            type_ids: self
                .type_ids
                .as_ref()
                .map(|t| indices.iter().map(|&i| t[i].clone()).collect()),
            labels: self.labels.subset(indices),
            cut: indices
                .iter()
                .filter_map(|&i| self.cut.get(i).copied())
                .collect(),
            pad_id: self.pad_id,
            max_len: self.max_len,
            padding: self.padding,
            masking: self.masking.clone(),
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
        self.ids.lengths()
    }

    /// How wide a batch of rows of `lengths` tokens is padded (see
    /// [`padded_width`](super::tokenizer::padded_width)).
    pub fn padded_width(&self, lengths: &[usize]) -> usize {
        super::tokenizer::padded_width(lengths, self.max_len, self.padding)
    }

    /// The batch of the given rows, padded per the set's [`Padding`], on `device` (a
    /// masked-LM set's rows masked as the pass of seed 0 masks them: see
    /// [`EncodedSet::batch_of_pass`]).
    pub fn batch_of(&self, rows: &[usize], device: Device) -> Batch {
        self.batch_of_pass(rows, 0, device)
    }

    /// [`EncodedSet::batch_of`] in the pass drawn from `seed`: a masked-LM set's rows are
    /// masked here, row `r` by the generator of `(seed, r)` (as [`EncodedSet::masked`] masks
    /// it); any other set's batch does not depend on the seed.
    pub fn batch_of_pass(&self, rows: &[usize], seed: u64, device: Device) -> Batch {
        let read: Vec<std::borrow::Cow<'_, [i64]>> =
            rows.iter().map(|&r| self.ids.row(r)).collect();
        let masked: Option<Vec<(Vec<i64>, Vec<i64>)>> = self.masking.as_ref().map(|m| {
            rows.iter()
                .zip(&read)
                .map(|(&r, row)| self.mask_row(m, r, row, seed))
                .collect()
        });
        let ids: Vec<&[i64]> = match &masked {
            Some(m) => m.iter().map(|(ids, _)| ids.as_slice()).collect(),
            None => read.iter().map(|r| r.as_ref()).collect(),
        };
        let types: Option<Vec<&[i64]>> = self
            .type_ids
            .as_ref()
            .map(|t| rows.iter().map(|&r| t[r].as_slice()).collect());
        let inputs = pad_rows_with_types(
            &ids,
            types.as_deref(),
            self.pad_id,
            self.max_len,
            self.padding,
        );
        let width = inputs.seq_len().max(0) as usize;
        let labels = match &masked {
            Some(m) => {
                let drawn = Labels::Tokens(m.iter().map(|(_, l)| l.clone()).collect());
                let all: Vec<usize> = (0..rows.len()).collect();
                drawn.tensor_of_width(&all, width)
            }
            None => self.labels.tensor_of_width(rows, width),
        };
        let labelled =
            (self.masking.is_some() || matches!(self.labels, Labels::Tokens(_))).then(|| {
                labels
                    .reshape([-1])
                    .ne(super::tagging::IGNORE_INDEX)
                    .nonzero()
                    .squeeze_dim(1)
            });
        Batch {
            tokens: ids.iter().map(|r| r.len().min(width)).sum(),
            positions: rows.len() * width,
            inputs: inputs.to_device(device),
            labels: upload(&labels, device),
            labelled: labelled.map(|t| upload(&t, device)),
        }
    }
}
