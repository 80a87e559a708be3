//! Checkpoints in Hugging Face's folder format: `from_pretrained` and `save_pretrained`, and
//! the loaders the CLI and the notebook share ([`load_tokenizer`], [`load_model`],
//! [`load_classifier`]), which add what the tutorial does around `from_pretrained`
//! (`num_labels=2`, CoLA's label names).
//!
//! The folder holds `config.json` and `model.safetensors` (plus the tokenizer's files), so
//! transformers reads what this crate writes and the other way round.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use tch::Device;

use super::classifier::BertForSequenceClassification;
use super::config::BertConfig;
use super::weights;
use crate::data::cola::LABELS;
use crate::data::tokenizer::BertTokenizer;

/// The class name written into `config.json`'s `architectures`.
const ARCHITECTURE: &str = "BertForSequenceClassification";

impl BertForSequenceClassification {
    /// Loads a checkpoint folder or a hub id (downloaded into the Hugging Face cache when it
    /// is not there, unless `HF_HUB_OFFLINE` is set).
    ///
    /// `num_labels`: `None` keeps the checkpoint's own head and label names; `Some(n)` asks
    /// for `n` classes, and a head of another size is replaced by a fresh one (reported).
    /// Like transformers, it prints the load report when something was missing or unused.
    pub fn from_pretrained(
        name_or_dir: &str,
        num_labels: impl Into<Option<usize>>,
        device: Device,
    ) -> Result<Self> {
        let dir = super::hub::resolve(name_or_dir)?;
        let config_file = dir.join("config.json");
        let mut config = BertConfig::read(&config_file)?;
        if let Some(n) = num_labels.into() {
            config.set_num_labels(n);
        }
        let weights_file = weights_path(&dir)?;
        // Every shape the config implies is compared with the file's header first, so a
        // mistyped size is an error naming the field, not an allocation failing in libtorch.
        weights::check_header(&config, &weights::read_header(&weights_file)?)?;
        config
            .validate()
            .with_context(|| format!("in {}", config_file.display()))?;
        let mut model = Self::new(&config, device)
            .with_context(|| format!("building the model described by {}", dir.display()))?;
        let report = weights::load(&model.vs, &weights_file, ARCHITECTURE)?;
        if !report.is_clean() {
            println!("{report}");
        }
        model.load_report = Some(report);
        Ok(model)
    }

    /// Writes `config.json`, `model.safetensors` and (given a tokenizer) its files into `dir`,
    /// each through a temporary name. Returns the files written.
    pub fn save_pretrained(
        &self,
        dir: impl AsRef<Path>,
        tokenizer: Option<&crate::data::tokenizer::BertTokenizer>,
    ) -> Result<Vec<PathBuf>> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut written = vec![weights::save(
            &self.named_parameters(),
            &dir.join("model.safetensors"),
        )?];
        let config = self.config.to_json(ARCHITECTURE)?;
        written.push(crate::runtime::atomic::write(
            &dir.join("config.json"),
            config.as_bytes(),
        )?);
        if let Some(tokenizer) = tokenizer {
            written.extend(tokenizer.save(dir)?);
        }
        Ok(written)
    }
}

fn weights_path(dir: &Path) -> Result<PathBuf> {
    let safetensors = dir.join("model.safetensors");
    if safetensors.exists() {
        return Ok(safetensors);
    }
    if dir.join("pytorch_model.bin").exists() {
        bail!(
            "{} has only pytorch_model.bin, a Python pickle that can run code when loaded; \
             this crate reads model.safetensors. Convert it once with transformers: \
             BertForSequenceClassification.from_pretrained(dir).save_pretrained(dir)",
            dir.display()
        );
    }
    bail!("{} has no model weights (model.safetensors)", dir.display())
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
pub fn check_vocabulary(
    tokenizer: &BertTokenizer,
    model: &BertForSequenceClassification,
) -> Result<()> {
    let max_id = tokenizer.max_id();
    let vocab = model.config.vocab_size;
    if max_id >= vocab {
        anyhow::bail!(
            "the tokenizer in {} produces ids up to {max_id}, but the model's vocab_size is \
             {vocab} (its word embeddings have {vocab} rows): do the tokenizer files belong to \
             this model?",
            tokenizer.source().display()
        );
    }
    Ok(())
}
