//! Checkpoints in Hugging Face's folder format: `from_pretrained` and `save_pretrained`.
//!
//! The folder holds `config.json` and `model.safetensors` (plus the tokenizer's files), so
//! transformers reads what this crate writes and the other way round.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tch::Device;

use super::classifier::BertForSequenceClassification;
use super::config::BertConfig;
use super::weights;

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
        tokenizer: Option<&crate::tokenize::BertTokenizer>,
    ) -> Result<Vec<PathBuf>> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut written = vec![weights::save(
            &self.named_parameters(),
            &dir.join("model.safetensors"),
        )?];
        let config = self.config.to_json(ARCHITECTURE)?;
        written.push(crate::atomic::write(
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
