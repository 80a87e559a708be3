//! Masking for masked-language-model training, as transformers' `DataCollatorForLanguageModeling`
//! (run_mlm's default) does it: each token other than the special ones and padding is chosen
//! with probability `probability` (0.15); of the chosen, 80 % become `[MASK]`, 10 % a random
//! id of the vocabulary, 10 % stay as they are; the labels hold the original id at the chosen
//! positions and -100 everywhere else, so the loss reads only those.
//!
//! The draws come from seeded generators (not torch's), one per row and pass
//! ([`Masking::row_generator`]): a run's masks follow from its seed, the epoch and the row, so
//! an interrupted run that resumes, or one split over ranks, draws the same masks.

use anyhow::{bail, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::tagging::IGNORE_INDEX;

/// What [`Masking::mask`] makes of a batch: the model's input ids and the labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Masked {
    pub input_ids: Vec<Vec<i64>>,
    pub labels: Vec<Vec<i64>>,
}

/// How tokens are masked (transformers' `mlm_probability`, with the 80/10/10 split).
#[derive(Debug, Clone)]
pub struct Masking {
    /// Probability that a token is chosen (`--mlm-probability`, 0.15 by default).
    pub probability: f64,
    /// The id that replaces 80 % of the chosen tokens.
    pub mask_id: i64,
    /// Random replacements are drawn from `0..vocab_size`, as transformers draws them.
    pub vocab_size: i64,
    /// Ids never chosen (the tokenizer's special tokens); padding is never chosen either.
    pub never: Vec<i64>,
    /// Whole-word masking (`--whole-word-mask`, transformers' `whole_word_mask=True`): words
    /// are chosen with `probability`, and every piece of a chosen word is masked.
    pub whole_word: bool,
}

impl Masking {
    /// Masking with `probability`, which must lie strictly between 0 and 1.
    pub fn new(probability: f64, mask_id: i64, vocab_size: i64, never: Vec<i64>) -> Result<Self> {
        if !(probability > 0.0 && probability < 1.0) {
            bail!("the masking probability (--mlm-probability) must lie between 0 and 1, not {probability}");
        }
        if !(0..vocab_size).contains(&mask_id) {
            bail!("the [MASK] id {mask_id} is outside the vocabulary of {vocab_size} ids");
        }
        Ok(Masking {
            probability,
            mask_id,
            vocab_size,
            never,
            whole_word: false,
        })
    }

    /// This masking choosing whole words (see [`Masking::mask_row_in_words`]).
    pub fn with_whole_words(mut self, whole_word: bool) -> Self {
        self.whole_word = whole_word;
        self
    }

    /// The masking of a tokenizer's vocabulary: its `[MASK]` and special tokens.
    pub fn for_tokenizer(
        probability: f64,
        tokenizer: &crate::data::tokenizer::BertTokenizer,
        vocab_size: i64,
    ) -> Result<Self> {
        let Some(mask_id) = tokenizer.mask_id() else {
            bail!(
                "the tokenizer in {} has no mask token ({}), which masked-LM training needs",
                tokenizer.source().display(),
                tokenizer.specials.mask
            );
        };
        Self::new(probability, mask_id, vocab_size, tokenizer.special_ids())
    }

    /// The generator of row `row`'s masks in the pass drawn from `seed`: a function of the two
    /// alone (see [`crate::data::EncodedSet::masked`]).
    pub fn row_generator(seed: u64, row: usize) -> StdRng {
        StdRng::seed_from_u64(
            seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(row as u64)
                .rotate_left(17),
        )
    }

    /// What the model reads in place of a chosen token: `[MASK]` 80 % of the time, a random id
    /// of the vocabulary 10 %, the token itself 10 %.
    fn replacement(&self, id: i64, rng: &mut StdRng) -> i64 {
        let split = rng.random::<f64>();
        if split < 0.8 {
            self.mask_id
        } else if split < 0.9 {
            rng.random_range(0..self.vocab_size)
        } else {
            id
        }
    }

    /// Masks one row of ids whose first `length` are real tokens (the rest padding): the
    /// masked ids and the labels.
    pub fn mask_row(&self, row: &[i64], length: usize, rng: &mut StdRng) -> (Vec<i64>, Vec<i64>) {
        let mut ids = row.to_vec();
        let mut labels = vec![IGNORE_INDEX; row.len()];
        for (j, &id) in row.iter().enumerate().take(length) {
            if self.never.contains(&id) || rng.random::<f64>() >= self.probability {
                continue;
            }
            labels[j] = id;
            ids[j] = self.replacement(id, rng);
        }
        (ids, labels)
    }

    /// Whole-word masking of one row, as transformers' collator masks whole words: only the
    /// first piece of a word (`starts`, from the text's offsets; a row's first token, and a
    /// token after a special one, start one too) is drawn, with `probability`, and a chosen
    /// word has all its pieces masked, each then replaced 80/10/10 as a single token is.
    pub fn mask_row_in_words(
        &self,
        row: &[i64],
        length: usize,
        starts: &[bool],
        rng: &mut StdRng,
    ) -> (Vec<i64>, Vec<i64>) {
        let mut ids = row.to_vec();
        let mut labels = vec![IGNORE_INDEX; row.len()];
        let mut chosen = false;
        for (j, &id) in row.iter().enumerate().take(length) {
            if self.never.contains(&id) {
                chosen = false;
                continue;
            }
            if j == 0 || starts.get(j).copied().unwrap_or(true) {
                chosen = rng.random::<f64>() < self.probability;
            }
            if !chosen {
                continue;
            }
            labels[j] = id;
            ids[j] = self.replacement(id, rng);
        }
        (ids, labels)
    }

    /// Masks rows of ids (row `i` with [`Masking::row_generator`]`(seed, i)`); `lengths[i]`
    /// real tokens of row `i` are candidates (the rest is padding), except the ids in
    /// [`Masking::never`].
    pub fn mask(&self, rows: &[Vec<i64>], lengths: &[usize], seed: u64) -> Masked {
        let (input_ids, labels) = rows
            .iter()
            .enumerate()
            .map(|(i, row)| self.mask_row(row, lengths[i], &mut Self::row_generator(seed, i)))
            .unzip();
        Masked { input_ids, labels }
    }
}
