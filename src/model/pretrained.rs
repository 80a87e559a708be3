//! The sequence classifier's `from_pretrained` and `save_pretrained` (the shared work is in
//! [`checkpoint`](super::checkpoint)), and the loaders the CLI and the notebook share
//! ([`load_tokenizer`], [`load_model`], [`load_classifier`]), which add what the tutorial does
//! around `from_pretrained` (`num_labels=2`, CoLA's label names).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use tch::Device;

use super::checkpoint::{self, BertCheckpoint};
use super::classifier::BertForSequenceClassification;
use crate::data::cola::LABELS;
use crate::data::tokenizer::BertTokenizer;

impl BertForSequenceClassification {
    /// [`checkpoint::from_pretrained`] for this head: `num_labels` `None` keeps the
    /// checkpoint's own head and label names; `Some(n)` asks for `n` classes.
    pub fn from_pretrained(
        name_or_dir: &str,
        num_labels: impl Into<Option<usize>>,
        device: Device,
    ) -> Result<Self> {
        checkpoint::from_pretrained(name_or_dir, num_labels.into(), device)
    }

    /// [`checkpoint::save_pretrained`] for this head.
    pub fn save_pretrained(
        &self,
        dir: impl AsRef<Path>,
        tokenizer: Option<&BertTokenizer>,
    ) -> Result<Vec<PathBuf>> {
        checkpoint::save_pretrained(self, dir.as_ref(), tokenizer)
    }
}

/// The first class `config.json` lists under `architectures` (`None` when it lists none), so a
/// caller can load the head the checkpoint was saved with.
pub fn architecture(dir: impl AsRef<Path>) -> Result<Option<String>> {
    let file = dir.as_ref().join("config.json");
    Ok(first_architecture(&super::config::BertConfig::read(&file)?))
}

fn first_architecture(config: &super::config::BertConfig) -> Option<String> {
    config
        .extra
        .get("architectures")
        .and_then(|a| a.get(0))
        .and_then(|a| a.as_str())
        .map(str::to_string)
}

/// The task part of the checkpoint's class (`ForTokenClassification` for
/// `RobertaForTokenClassification`), whatever the family: what `predict` dispatches on.
pub fn head(dir: impl AsRef<Path>) -> Result<Option<String>> {
    let config = super::config::BertConfig::read(&dir.as_ref().join("config.json"))?;
    let family = config.family()?;
    Ok(first_architecture(&config).map(|a| {
        a.strip_prefix(family.class_prefix())
            .map_or(a.clone(), str::to_string)
    }))
}

/// Loads the tokenizer that belongs to a checkpoint (folder or hub id, downloaded into the
/// Hugging Face cache when missing).
pub fn load_tokenizer(name_or_dir: impl AsRef<Path>) -> Result<BertTokenizer> {
    BertTokenizer::from_dir(crate::model::hub::resolve(as_name(name_or_dir.as_ref())?)?)
}

/// Loads a checkpoint to fine-tune on CoLA: a head of two classes (a fresh one when the
/// checkpoint's has another size), named as CoLA's unless the checkpoint names them.
pub fn load_model(
    name_or_dir: impl AsRef<Path>,
    device: Device,
) -> Result<BertForSequenceClassification> {
    let name = as_name(name_or_dir.as_ref())?;
    let mut model = BertForSequenceClassification::from_pretrained(name, LABELS.len(), device)?;
    name_unnamed_labels(&mut model);
    Ok(model)
}

/// Loads a fine-tuned checkpoint as it is, for predictions: its own head and label names
/// (CoLA's only for an unnamed two-class head).
pub fn load_classifier(
    name_or_dir: impl AsRef<Path>,
    device: Device,
) -> Result<BertForSequenceClassification> {
    let name = as_name(name_or_dir.as_ref())?;
    let mut model = BertForSequenceClassification::from_pretrained(name, None, device)?;
    name_unnamed_labels(&mut model);
    Ok(model)
}

/// A folder or hub id as the hub's functions take it. Accepting paths lets a notebook pass a
/// `PathBuf` as it is; only a name that is not UTF-8 (never a hub id) is refused.
fn as_name(name_or_dir: &Path) -> Result<&str> {
    name_or_dir
        .to_str()
        .ok_or_else(|| anyhow!("{} is not a UTF-8 path", name_or_dir.display()))
}

/// Gives a two-class head with Hugging Face's placeholder names (`LABEL_0`, `LABEL_1`)
/// CoLA's names, so predictions read "acceptable" rather than "LABEL_1".
fn name_unnamed_labels(model: &mut BertForSequenceClassification) {
    let unnamed =
        (0..model.config.num_labels()).all(|i| model.config.label_name(i) == format!("LABEL_{i}"));
    if unnamed && model.config.num_labels() == LABELS.len() {
        model.config.set_labels(&LABELS.map(String::from));
    }
}

/// Refuses a tokenizer that can produce ids the model has no embedding for (a tokenizer from
/// another checkpoint in the folder): the lookup would fail inside libtorch mid-run.
pub fn check_vocabulary(tokenizer: &BertTokenizer, model: &impl BertCheckpoint) -> Result<()> {
    let max_id = tokenizer.max_id();
    let vocab = model.bert_config().vocab_size;
    if max_id >= vocab {
        anyhow::bail!(
            "the tokenizer in {} produces ids up to {max_id}, but the model's vocab_size is \
             {vocab} (its word embeddings have {vocab} rows): do the tokenizer files belong to \
             this model?",
            tokenizer.source().display()
        );
    }
    let types = model.bert_config().type_vocab_size;
    if model.bert_config().has_token_types() && tokenizer.second_type >= types {
        anyhow::bail!(
            "the tokenizer in {} gives a pair's second text token type {}, but the model's \
             type_vocab_size is {types}: do the tokenizer files belong to this model?",
            tokenizer.source().display(),
            tokenizer.second_type
        );
    }
    Ok(())
}
