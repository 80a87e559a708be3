//! One attention head as a token × token heatmap: for each token (row, the query), how much
//! it draws on every token of the sentence (column, the key).

use anyhow::{bail, Context, Result};
use tch::{Device, Kind, Tensor};

use super::heatmap::{Heatmap, VIRIDIS};
use super::{render, Figure};
use crate::data::tokenizer::{BertTokenizer, Padding};
use crate::model::BertForSequenceClassification;

/// Heatmap of attention probabilities `probs`, `[seq, seq]` (rows: queries, columns: keys),
/// with `tokens` labelling both axes. The colour scale runs from 0 to the largest value.
pub fn attention(tokens: &[impl AsRef<str>], probs: &Tensor, title: &str) -> Result<Figure> {
    let n = tokens.len();
    let size = probs.size();
    if size != [n as i64, n as i64] {
        bail!(
            "attention: probabilities of shape {size:?} do not match {n} tokens; \
             expected [{n}, {n}] (one row and one column per token)"
        );
    }
    if n == 0 {
        bail!("attention: no tokens to plot");
    }
    let probs = probs.to_device(Device::Cpu).to_kind(Kind::Double);
    let values: Vec<Vec<f64>> = (0..n as i64)
        .map(|i| Vec::<f64>::try_from(probs.get(i)))
        .collect::<std::result::Result<_, _>>()
        .context("attention: cannot read the probabilities")?;
    let highest = values.iter().flatten().copied().fold(0.0f64, f64::max);
    let labels: Vec<String> = tokens.iter().map(|t| t.as_ref().to_string()).collect();
    // Square cells at a readable size, whatever the sentence length.
    let side = (n as u32 * 34).clamp(360, 900);
    render(Heatmap {
        title: title.to_string(),
        x_label: "key (attended to)".into(),
        y_label: "query (attending)".into(),
        columns: labels.clone(),
        rows: labels,
        values,
        scale: 0.0..highest.max(1e-6),
        palette: VIRIDIS,
        cells: Vec::new(),
        bar_label: "attention probability".into(),
        bar_format: |v| format!("{v:.2}"),
        size: (side + 330, side + 230),
    })
}

/// Tokenizes `sentence`, runs `model` with attentions on, and plots head `head` of layer
/// `layer` (both counted from 0). Errors name the valid range when either is out of it.
pub fn attention_map(
    model: &BertForSequenceClassification,
    tokenizer: &BertTokenizer,
    sentence: &str,
    layer: usize,
    head: usize,
) -> Result<Figure> {
    let layers = model.config.num_hidden_layers as usize;
    let heads = model.config.num_attention_heads as usize;
    if layer >= layers {
        bail!(
            "layer {layer} is out of range: this model has {layers} layers, 0 to {}",
            layers - 1
        );
    }
    if head >= heads {
        bail!(
            "head {head} is out of range: this model has {heads} attention heads per layer, \
             0 to {}",
            heads - 1
        );
    }
    let max_len = model.config.max_tokens() as usize;
    let sentences = [sentence.to_string()];
    let inputs = tokenizer.encode_batch(&sentences, max_len, Padding::Longest)?;
    let ids = Vec::<i64>::try_from(inputs.input_ids.get(0))?;
    let tokens = tokenizer.convert_ids_to_tokens(&ids);
    let attentions = model.attentions(&inputs)?;
    let probs = attentions[layer].get(0).get(head as i64);
    let shown: String = if sentence.chars().count() > 60 {
        sentence.chars().take(57).collect::<String>() + "…"
    } else {
        sentence.to_string()
    };
    attention(
        &tokens,
        &probs,
        &format!("Layer {layer}, head {head}: \u{201c}{shown}\u{201d}"),
    )
}
