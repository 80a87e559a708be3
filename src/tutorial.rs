//! The tutorial's steps as functions, shared by the CLI and the notebook so both run the same
//! code and report the same numbers for the same settings.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tch::{Device, Kind, Tensor};

use crate::cola::{Cola, Split};
use crate::data::EncodedSet;
use crate::display::Table;
use crate::model::BertForSequenceClassification;
use crate::tokenize::{BertTokenizer, Padding};

/// CoLA's classes, saved into `config.json` so a reloaded model names its predictions.
pub const LABELS: [&str; 2] = ["unacceptable", "acceptable"];

/// Share of the training file held out for validation.
pub const VALIDATION_FRACTION: f64 = 0.1;

/// Which checkpoint to fine-tune and why.
#[derive(Debug, Clone)]
pub struct ModelChoice {
    /// A folder or a hub id, as `from_pretrained` takes it.
    pub name_or_dir: String,
    pub reason: String,
}

impl std::fmt::Display for ModelChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Using {}: {}", self.name_or_dir, self.reason)
    }
}

/// `$BERT_FINETUNE_MODEL` if set (downloaded when first used, like any id the user names);
/// else bert-base-uncased when the Hugging Face cache already holds all of it; else the
/// embedded all-MiniLM-L6-v2. The choice itself never touches the network.
pub fn choose_model() -> ModelChoice {
    if let Ok(name) = std::env::var("BERT_FINETUNE_MODEL") {
        if !name.is_empty() {
            return ModelChoice {
                name_or_dir: name,
                reason: "chosen by $BERT_FINETUNE_MODEL".into(),
            };
        }
    }
    if crate::model::hub::cached("bert-base-uncased").is_some() {
        return ModelChoice {
            name_or_dir: "bert-base-uncased".into(),
            reason: "the tutorial's model, found in the local Hugging Face cache".into(),
        };
    }
    ModelChoice {
        name_or_dir: crate::model::default_checkpoint().display().to_string(),
        reason: format!(
            "bert-base-uncased is not in the Hugging Face cache ({}), so the embedded \
             all-MiniLM-L6-v2 is used",
            crate::model::hub::cache_dir().display()
        ),
    }
}

/// Loads the tokenizer that belongs to a checkpoint (folder or cached hub id).
pub fn load_tokenizer(name_or_dir: &str) -> Result<BertTokenizer> {
    BertTokenizer::from_dir(crate::model::hub::resolve(name_or_dir)?)
}

/// Loads a checkpoint to fine-tune on CoLA: a head of two classes (a fresh one when the
/// checkpoint's has another size), named as CoLA's unless the checkpoint names them.
pub fn load_model(name_or_dir: &str, device: Device) -> Result<BertForSequenceClassification> {
    let mut model =
        BertForSequenceClassification::from_pretrained(name_or_dir, LABELS.len(), device)?;
    name_unnamed_labels(&mut model);
    Ok(model)
}

/// Loads a fine-tuned checkpoint as it is, for predictions: its own head and label names
/// (CoLA's only for an unnamed two-class head).
pub fn load_classifier(name_or_dir: &str, device: Device) -> Result<BertForSequenceClassification> {
    let mut model = BertForSequenceClassification::from_pretrained(name_or_dir, None, device)?;
    name_unnamed_labels(&mut model);
    Ok(model)
}

fn name_unnamed_labels(model: &mut BertForSequenceClassification) {
    let unnamed =
        (0..model.config.num_labels()).all(|i| model.config.label_name(i) == format!("LABEL_{i}"));
    if unnamed && model.config.num_labels() == LABELS.len() {
        model.config.set_labels(&LABELS.map(String::from));
    }
}

/// Tokenizes one CoLA split, keeping at most `limit` sentences (quick runs).
pub fn encode_split(
    tokenizer: &BertTokenizer,
    data_dir: &Path,
    split: Split,
    max_len: usize,
    padding: Padding,
    limit: Option<usize>,
) -> Result<EncodedSet> {
    let cola = Cola::load_split(data_dir, split)?;
    let set = EncodedSet::new(
        tokenizer,
        &cola.sentences(),
        &cola.labels(),
        max_len,
        padding,
    )?;
    Ok(match limit {
        Some(n) => set.take(n),
        None => set,
    })
}

/// The training file split 90/10 into training and validation sets, seeded.
pub fn train_validation(
    tokenizer: &BertTokenizer,
    data_dir: &Path,
    max_len: usize,
    padding: Padding,
    seed: u64,
    limit: Option<usize>,
) -> Result<(EncodedSet, EncodedSet)> {
    let all = encode_split(tokenizer, data_dir, Split::Train, max_len, padding, None)?;
    let (train, val) = all.split(VALIDATION_FRACTION, seed);
    Ok(match limit {
        Some(n) => (train.take(n), val.take((n / 9).max(1))),
        None => (train, val),
    })
}

/// Files in a folder with their sizes, like the tutorial's `ls -l`.
pub fn list_files(dir: &Path) -> Result<Table> {
    let mut entries: Vec<(String, u64)> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .map(|e| {
            let size = e.metadata().map(|m| m.len()).unwrap_or(0);
            (e.file_name().to_string_lossy().into_owned(), size)
        })
        .filter(|(name, _)| !name.starts_with('.'))
        .collect();
    entries.sort();
    let mut table = Table::new(format!("{}", dir.display()), &["file", "bytes", "size"]);
    for (name, size) in entries {
        table.push_row([
            name,
            crate::cola::thousands(size as usize),
            crate::display::size(size),
        ]);
    }
    Ok(table)
}

/// Each sentence's predicted class and its probability.
pub fn predict_sentences(
    model: &BertForSequenceClassification,
    tokenizer: &BertTokenizer,
    sentences: &[String],
) -> Result<Table> {
    let batch = tokenizer.encode_batch(
        sentences,
        512.min(model.config.max_position_embeddings as usize),
        Padding::Longest,
    )?;
    let probs = tch::no_grad(|| model.logits(&batch, false).softmax(-1, Kind::Float))
        .to_device(Device::Cpu);
    let best = probs.argmax(-1, false);
    let mut table = Table::new("Predictions", &["sentence", "label", "probability"]);
    for (i, sentence) in sentences.iter().enumerate() {
        let class = best.int64_value(&[i as i64]);
        let p = probs.double_value(&[i as i64, class]);
        table.push_row([
            sentence.clone(),
            model.config.label_name(class as usize),
            format!("{p:.3}"),
        ]);
    }
    Ok(table)
}

/// The outputs of a training run, all in one folder.
pub struct RunFiles {
    pub dir: PathBuf,
}

impl RunFiles {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        RunFiles { dir: dir.into() }
    }
    pub fn history(&self) -> PathBuf {
        self.dir.join("history.json")
    }
    pub fn summary(&self) -> PathBuf {
        self.dir.join("summary.json")
    }
}

/// A tensor's first row as a short list, for showing ids and masks in a notebook.
pub fn row_preview(t: &Tensor, row: i64) -> Vec<i64> {
    Vec::try_from(t.get(row).to_device(Device::Cpu)).unwrap_or_default()
}

/// The project folder (where `Cargo.toml` is), for paths that must not depend on the current
/// directory: a notebook runs in `notebooks/`, the CLI wherever it is started.
pub fn project_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// True when `BERT_FINETUNE_QUICK=1`: notebooks and scripts then use a small subset and one
/// epoch, so a test can execute them in minutes.
pub fn quick_mode() -> bool {
    std::env::var("BERT_FINETUNE_QUICK").is_ok_and(|v| v == "1")
}
