//! Masking for masked-language-model training, as transformers' `DataCollatorForLanguageModeling`
//! (run_mlm's default) does it: each token other than the special ones and padding is chosen
//! with probability `probability` (0.15); of the chosen, 80 % become `[MASK]`, 10 % a random
//! id of the vocabulary, 10 % stay as they are; the labels hold the original id at the chosen
//! positions and -100 everywhere else, so the loss reads only those.
//!
//! The draws come from a seeded generator (not torch's), so a run's masks follow from its seed
//! and the epoch ([`Masking::generator`]): an interrupted run that resumes draws the same masks.

use anyhow::{bail, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tch::Tensor;

/// The label of a position the loss ignores (PyTorch's `ignore_index`).
const IGNORED: i64 = -100;

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
        })
    }

    /// The masking of a tokenizer's vocabulary: its `[MASK]` and special tokens.
    pub fn for_tokenizer(
        probability: f64,
        tokenizer: &crate::data::tokenizer::BertTokenizer,
        vocab_size: i64,
    ) -> Result<Self> {
        let Some(mask_id) = tokenizer.token_id("[MASK]") else {
            bail!(
                "the tokenizer in {} has no [MASK] token, which masked-LM training needs",
                tokenizer.source().display()
            );
        };
        Self::new(probability, mask_id, vocab_size, tokenizer.special_ids())
    }

    /// The generator of one epoch's masks: a function of the run's seed and the epoch only.
    pub fn generator(seed: u64, epoch: usize) -> StdRng {
        StdRng::seed_from_u64(
            seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(epoch as u64 + 1),
        )
    }

    /// Masks rows of ids; `lengths[i]` real tokens of row `i` are candidates (the rest is
    /// padding), except the ids in [`Masking::never`].
    pub fn mask(&self, rows: &[Vec<i64>], lengths: &[usize], rng: &mut StdRng) -> Masked {
        let mut input_ids = rows.to_vec();
        let mut labels: Vec<Vec<i64>> = rows.iter().map(|r| vec![IGNORED; r.len()]).collect();
        for (i, row) in rows.iter().enumerate() {
            for (j, &id) in row.iter().enumerate().take(lengths[i]) {
                if self.never.contains(&id) || rng.random::<f64>() >= self.probability {
                    continue;
                }
                labels[i][j] = id;
                let split = rng.random::<f64>();
                if split < 0.8 {
                    input_ids[i][j] = self.mask_id;
                } else if split < 0.9 {
                    input_ids[i][j] = rng.random_range(0..self.vocab_size);
                }
            }
        }
        Masked { input_ids, labels }
    }

    /// [`Masking::mask`] of a batch's `[batch, seq]` input ids and attention mask, as tensors
    /// on the CPU: (input ids, labels).
    pub fn mask_batch(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        rng: &mut StdRng,
    ) -> Result<(Tensor, Tensor)> {
        let [batch, seq] = input_ids.size()[..] else {
            bail!("input ids must be [batch, seq]; got {:?}", input_ids.size());
        };
        let rows: Vec<Vec<i64>> = Vec::<Vec<i64>>::try_from(input_ids.to_kind(tch::Kind::Int64))?;
        let lengths: Vec<usize> =
            Vec::<i64>::try_from(attention_mask.to_kind(tch::Kind::Int64).sum_dim_intlist(
                [1i64].as_slice(),
                false,
                tch::Kind::Int64,
            ))?
            .into_iter()
            .map(|n| n as usize)
            .collect();
        let masked = self.mask(&rows, &lengths, rng);
        let flat = |rows: Vec<Vec<i64>>| Tensor::from_slice(&rows.concat()).reshape([batch, seq]);
        Ok((flat(masked.input_ids), flat(masked.labels)))
    }
}
