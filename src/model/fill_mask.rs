//! Fill-mask: the vocabulary's most likely tokens at each `[MASK]` of a text, as transformers'
//! `fill-mask` pipeline gives them (the softmax over the vocabulary at the masked position,
//! the `top_k` best, each with the text it completes).

use anyhow::{bail, Result};
use tch::Kind;

use super::masked_lm::BertForMaskedLM;
use crate::data::tokenizer::{pad_rows, BertTokenizer, Padding};
use crate::runtime::display::Table;

/// One candidate for one `[MASK]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Probability at that position.
    pub score: f64,
    pub token: i64,
    /// The token decoded on its own, as the fill-mask pipeline's `token_str`.
    pub token_str: String,
    /// The text with this token in place of the mask (other masks kept).
    pub sequence: String,
}

/// The candidates for every `[MASK]` of one text, in order of position.
#[derive(Debug, Clone)]
pub struct Filled {
    pub text: String,
    /// Per mask: its position among the ids, and its candidates, best first.
    pub masks: Vec<(usize, Vec<Candidate>)>,
}

/// The `top_k` best tokens at each `[MASK]` of each text (transformers' default `top_k` is 5).
/// A text without `[MASK]` is an error naming it.
pub fn fill_mask(
    model: &BertForMaskedLM,
    tokenizer: &BertTokenizer,
    texts: &[String],
    top_k: usize,
) -> Result<Vec<Filled>> {
    let Some(mask_id) = tokenizer.mask_id() else {
        bail!(
            "the tokenizer in {} has no mask token ({})",
            tokenizer.source().display(),
            tokenizer.specials.mask
        );
    };
    let max_len = model.config.max_tokens() as usize;
    let mut out = Vec::with_capacity(texts.len());
    for text in texts {
        let ids = tokenizer.encode(text)?;
        if ids.len() > max_len {
            bail!(
                "{text:?} is {} tokens long; the model reads at most {max_len}",
                ids.len()
            );
        }
        let positions: Vec<usize> = (0..ids.len()).filter(|&j| ids[j] == mask_id).collect();
        if positions.is_empty() {
            bail!("{text:?} has no [MASK] to fill: write [MASK] where a word should go");
        }
        let batch = pad_rows(
            &[ids.as_slice()],
            tokenizer.pad_id,
            ids.len(),
            Padding::Longest,
        );
        let probs = tch::no_grad(|| {
            model
                .logits(&batch, false)
                .get(0)
                .to_kind(Kind::Float)
                .softmax(-1, Kind::Float)
                .to_device(tch::Device::Cpu)
        });
        let k = top_k.clamp(1, model.config.vocab_size as usize);
        let mut masks = Vec::with_capacity(positions.len());
        for &p in &positions {
            let (values, indices) = probs.get(p as i64).topk(k as i64, -1, true, true);
            let values = Vec::<f32>::try_from(&values)?;
            let indices = Vec::<i64>::try_from(&indices)?;
            let candidates = values
                .iter()
                .zip(&indices)
                .map(|(&score, &token)| {
                    let mut filled = ids.clone();
                    filled[p] = token;
                    Ok(Candidate {
                        score: f64::from(score),
                        token,
                        // As the pipeline's `token_str`: the token decoded on its own, so a
                        // SentencePiece `▁often` reads `often` and a byte-level `Ġcat` ` cat`.
                        token_str: tokenizer.decode(&[token], false)?,
                        sequence: tokenizer.decode(&filled, true)?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            masks.push((p, candidates));
        }
        out.push(Filled {
            text: text.clone(),
            masks,
        });
    }
    Ok(out)
}

/// The candidates of several texts in one table: text, mask, token, score, completed text.
pub fn table(filled: &[Filled]) -> Table {
    let mut table = Table::new(
        "Fill-mask: the most likely tokens at each [MASK]",
        &["text", "mask", "token", "score", "sequence"],
    );
    for f in filled {
        for row in f.rows() {
            table.push_row(std::iter::once(f.text.clone()).chain(row));
        }
    }
    table
}

impl Filled {
    /// One row per candidate: the mask's number, the token, its score, the completed text.
    fn rows(&self) -> impl Iterator<Item = [String; 4]> + '_ {
        self.masks
            .iter()
            .enumerate()
            .flat_map(|(m, (_, candidates))| {
                candidates.iter().map(move |c| {
                    [
                        (m + 1).to_string(),
                        c.token_str.clone(),
                        format!("{:.4}", c.score),
                        c.sequence.clone(),
                    ]
                })
            })
    }

    /// A table of the candidates: mask, token, score, completed text.
    pub fn table(&self) -> Table {
        let mut table = Table::new(
            format!("Fill-mask: {}", self.text),
            &["mask", "token", "score", "sequence"],
        );
        for row in self.rows() {
            table.push_row(row);
        }
        table
    }

    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }
}

impl std::fmt::Display for Filled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.table())
    }
}
