//! `BertForSequenceClassification`: BERT's pooled `[CLS]` state → dropout → linear head.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tch::nn::VarStore;
use tch::{Device, Tensor};

use super::bert::{BertModel, BertOutput, Linear, DECAY, NO_DECAY};
use super::config::BertConfig;
use super::params::ParameterListing;
use super::weights::{self, LoadReport};
use crate::display::Table;
use crate::tokenize::Encoded;

const ARCHITECTURE: &str = "BertForSequenceClassification";

/// A BERT encoder with a classification head, owning its parameters.
pub struct BertForSequenceClassification {
    pub vs: VarStore,
    pub config: BertConfig,
    pub bert: BertModel,
    pub classifier: Linear,
    /// Set by `from_pretrained`: what matched the checkpoint.
    pub load_report: Option<LoadReport>,
}

impl BertForSequenceClassification {
    /// A randomly initialised model (HF's init: normal(0, `initializer_range`)).
    ///
    /// Weights are always drawn from the CPU generator and then copied to `device`, so a GPU
    /// run starts from the same weights (and the same fresh head) as a CPU or PyTorch run of
    /// the same seed.
    pub fn new(config: &BertConfig, device: Device) -> Result<Self> {
        crate::device::ensure_cuda_backend();
        let on_cpu = Self::build(config, Device::Cpu)?;
        if device == Device::Cpu {
            return Ok(on_cpu);
        }
        let mut model = Self::build(config, device)?;
        model
            .vs
            .copy(&on_cpu.vs)
            .map_err(|e| anyhow::anyhow!("cannot move the new model to {device:?}: {e}"))?;
        Ok(model)
    }

    fn build(config: &BertConfig, device: Device) -> Result<Self> {
        let vs = VarStore::new(device);
        let root = vs.root();
        let bert = BertModel::new(&root / "bert", config)?;
        let classifier = Linear::new(
            &root / "classifier",
            config.hidden_size,
            config.num_labels() as i64,
            config.initializer_range,
        );
        Ok(BertForSequenceClassification {
            vs,
            config: config.clone(),
            bert,
            classifier,
            load_report: None,
        })
    }

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
        let mut config = BertConfig::from_file(&dir.join("config.json"))?;
        if let Some(n) = num_labels.into() {
            config.set_num_labels(n);
        }
        let weights_file = weights_path(&dir)?;
        let mut model = Self::new(&config, device)
            .with_context(|| format!("building the model described by {}", dir.display()))?;
        let report = weights::load(&mut model.vs, &weights_file, ARCHITECTURE)?;
        if !report.is_clean() {
            println!("{report}");
        }
        model.load_report = Some(report);
        Ok(model)
    }

    /// Classification logits `[batch, num_labels]`; `train` turns dropout on.
    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        token_type_ids: &Tensor,
        train: bool,
    ) -> Tensor {
        let BertOutput { pooler_output, .. } =
            self.bert
                .forward(input_ids, attention_mask, token_type_ids, train);
        let pooled = pooler_output.dropout(self.config.classifier_dropout_prob(), train);
        self.classifier.forward(&pooled)
    }

    /// Logits for an encoded batch, moved to the model's device.
    pub fn logits(&self, batch: &Encoded, train: bool) -> Tensor {
        let device = self.vs.device();
        self.forward(
            &batch.input_ids.to_device(device),
            &batch.attention_mask.to_device(device),
            &batch.token_type_ids.to_device(device),
            train,
        )
    }

    /// Parameters in module order with Hugging Face names (what `named_parameters()` yields).
    pub fn named_parameters(&self) -> Vec<(String, Tensor)> {
        self.parameters_with_groups()
            .into_iter()
            .map(|(name, tensor, _)| (name, tensor))
            .collect()
    }

    /// (name, tensor, var-store group) in creation order, which is the module order.
    fn parameters_with_groups(&self) -> Vec<(String, Tensor, usize)> {
        let vars = self
            .vs
            .variables_
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let names: std::collections::HashMap<usize, &String> = vars
            .named_variables
            .iter()
            .map(|(name, t)| (t.data_ptr() as usize, name))
            .collect();
        vars.trainable_variables
            .iter()
            .filter_map(|v| {
                let name = names.get(&(v.tensor.data_ptr() as usize))?;
                Some(((*name).clone(), v.tensor.shallow_clone(), v.group))
            })
            .collect()
    }

    /// The two weight-decay groups of the tutorial's appendix, with counts and examples.
    pub fn weight_decay_groups(&self, weight_decay: f64) -> Table {
        let params = self.parameters_with_groups();
        let mut table = Table::new(
            "Weight-decay groups",
            &["group", "weight decay", "tensors", "values", "examples"],
        );
        for (group, label, decay) in [
            (DECAY, "weights", weight_decay),
            (NO_DECAY, "biases and LayerNorm", 0.0),
        ] {
            let members: Vec<&(String, Tensor, usize)> =
                params.iter().filter(|(_, _, g)| *g == group).collect();
            let values: i64 = members.iter().map(|(_, t, _)| t.numel() as i64).sum();
            let examples: Vec<&str> = members.iter().take(3).map(|(n, _, _)| n.as_str()).collect();
            table.push_row([
                label.to_string(),
                format!("{decay}"),
                members.len().to_string(),
                crate::cola::thousands(values as usize),
                format!("{}, …", examples.join(", ")),
            ]);
        }
        table
    }

    /// The tutorial's parameter listing: count, embeddings, first layer, output layer.
    pub fn parameter_listing(&self) -> ParameterListing {
        ParameterListing::new(
            self.named_parameters()
                .into_iter()
                .map(|(n, t)| (n, t.size()))
                .collect(),
        )
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
