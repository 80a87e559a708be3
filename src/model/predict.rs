//! New sentences through a trained classifier: the tutorial's closing step, as a table of
//! each sentence's predicted label and how sure the model is.
//!
//! `eval::predict` scores a labelled set for metrics; this takes bare sentences, as a user
//! types them.

use anyhow::Result;
use tch::{Device, Kind};

use crate::data::tokenizer::{BertTokenizer, Padding};
use crate::model::BertForSequenceClassification;
use crate::viz::display::Table;

/// Each sentence's predicted class and its probability.
pub fn classify_sentences(
    model: &BertForSequenceClassification,
    tokenizer: &BertTokenizer,
    sentences: &[impl AsRef<str>],
) -> Result<Table> {
    let mut table = Table::new("Predictions", &["sentence", "label", "probability"]);
    if sentences.is_empty() {
        return Ok(table);
    }
    let batch = tokenizer.encode_batch(
        sentences,
        512.min(model.config.max_position_embeddings as usize),
        Padding::Longest,
    )?;
    let probs = tch::no_grad(|| model.logits(&batch, false).softmax(-1, Kind::Float))
        .to_device(Device::Cpu);
    let best = probs.argmax(-1, false);
    for (i, sentence) in sentences.iter().enumerate() {
        let class = best.int64_value(&[i as i64]);
        let p = probs.double_value(&[i as i64, class]);
        table.push_row([
            sentence.as_ref().to_string(),
            model.config.label_name(class as usize),
            format!("{p:.3}"),
        ]);
    }
    Ok(table)
}
