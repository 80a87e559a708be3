//! A BERT with a task head as a Hugging Face checkpoint folder holds it: the
//! [`BertCheckpoint`] trait each head implements (how to build itself, its transformers class
//! name), and what is written once for every head: a fresh model ([`create`], with the memory
//! check), [`from_pretrained`] (the shape check against the weights' header, the load report)
//! and [`save_pretrained`] (what transformers' `Auto*` classes load).
//!
//! The folder holds `config.json` and `model.safetensors` (plus the tokenizer's files), so
//! transformers reads what this crate writes and the other way round.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use tch::nn::VarStore;
use tch::{Device, Tensor};

use super::config::BertConfig;
use super::weights::{self, LoadReport};
use crate::data::tokenizer::BertTokenizer;

/// A BERT with a task head, as a Hugging Face checkpoint folder holds it: each head type says
/// how to build itself and which class name `config.json`'s `architectures` gives it; loading,
/// saving and the memory check are written once, below, for all of them.
pub trait BertCheckpoint: Sized {
    /// The task part of the transformers class (`ForTokenClassification`).
    const TASK: &'static str;
    /// The transformers class for `config`'s family, written into `config.json`'s
    /// `architectures` (`RobertaForTokenClassification`).
    fn architecture(config: &BertConfig) -> String {
        let family = config.family().map_or("Bert", |f| f.class_prefix());
        format!("{family}{}", Self::TASK)
    }
    /// A model with fresh weights on `device`, without the memory check ([`create`] adds it).
    fn build(config: &BertConfig, device: Device) -> Result<Self>;
    fn var_store(&self) -> &VarStore;
    fn var_store_mut(&mut self) -> &mut VarStore;
    fn bert_config(&self) -> &BertConfig;
    /// Keeps what `from_pretrained` matched against the checkpoint.
    fn set_load_report(&mut self, report: LoadReport);
}

/// The accessors of [`BertCheckpoint`] that every head writes the same way, for a struct with
/// the fields `vs`, `config` and `load_report`: `checkpoint_fields!();` inside its impl.
macro_rules! checkpoint_fields {
    () => {
        fn var_store(&self) -> &tch::nn::VarStore {
            &self.vs
        }

        fn var_store_mut(&mut self) -> &mut tch::nn::VarStore {
            &mut self.vs
        }

        fn bert_config(&self) -> &crate::model::BertConfig {
            &self.config
        }

        fn set_load_report(&mut self, report: crate::model::LoadReport) {
            self.load_report = Some(report);
        }
    };
}
pub(crate) use checkpoint_fields;

/// A randomly initialised model (HF's init: normal(0, `initializer_range`)).
///
/// Weights are always drawn from the CPU generator and then copied to `device`, so a GPU run
/// starts from the same weights (and the same fresh head) as a CPU or PyTorch run of the same
/// seed. A config whose parameters would not fit in the memory available is refused first,
/// naming the part and the fields that make it large; an allocation libtorch still refuses is
/// an error naming the tensor, never a panic.
pub fn create<M: BertCheckpoint>(config: &BertConfig, device: Device) -> Result<M> {
    crate::runtime::device::ensure_cuda_backend();
    config.validate()?;
    check_memory(config)?;
    let on_cpu = M::build(config, Device::Cpu)?;
    if device == Device::Cpu {
        return Ok(on_cpu);
    }
    let mut model = M::build(config, device)?;
    model
        .var_store_mut()
        .copy(on_cpu.var_store())
        .map_err(|e| anyhow!("cannot move the new model to {device:?}: {e}"))?;
    Ok(model)
}

/// Loads a checkpoint folder or a hub id (downloaded into the Hugging Face cache when it is
/// not there, unless `HF_HUB_OFFLINE` is set) into a model of head `M`.
///
/// `num_labels`: `None` keeps the checkpoint's own head and label names; `Some(n)` asks for
/// `n` outputs, and a head of another size is replaced by a fresh one (reported). Like
/// transformers, it prints the load report when something was missing or unused.
pub fn from_pretrained<M: BertCheckpoint>(
    name_or_dir: &str,
    num_labels: Option<usize>,
    device: Device,
) -> Result<M> {
    let dir = super::hub::resolve(name_or_dir)?;
    let config_file = dir.join("config.json");
    let mut config = BertConfig::read(&config_file)?;
    if let Some(n) = num_labels {
        config.set_num_labels(n);
    }
    let weights_file = weights_path(&dir)?;
    // Every shape the config implies is compared with the file's header first, so a
    // mistyped size is an error naming the field, not an allocation failing in libtorch.
    weights::check_header(&config, &weights::read_header(&weights_file)?)?;
    config
        .validate()
        .with_context(|| format!("in {}", config_file.display()))?;
    let mut model: M = create(&config, device)
        .with_context(|| format!("building the model described by {}", dir.display()))?;
    let report = weights::load(
        model.var_store(),
        &weights_file,
        &M::architecture(&config),
        config.family()?,
    )?;
    if !report.is_clean() {
        println!("{report}");
    }
    model.set_load_report(report);
    Ok(model)
}

/// Writes `config.json` (with `M`'s `architectures`), `model.safetensors` and (given a
/// tokenizer) its files into `dir`, each through a temporary name. Returns the files written.
pub fn save_pretrained<M: BertCheckpoint>(
    model: &M,
    dir: &Path,
    tokenizer: Option<&BertTokenizer>,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut written = vec![weights::save(
        &named_parameters_of(model.var_store()),
        &dir.join("model.safetensors"),
    )?];
    let config = model
        .bert_config()
        .to_json(&M::architecture(model.bert_config()))?;
    written.push(crate::runtime::atomic::write(
        &dir.join("config.json"),
        config.as_bytes(),
    )?);
    if let Some(tokenizer) = tokenizer {
        written.extend(tokenizer.save(dir)?);
    }
    Ok(written)
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
             AutoModel.from_pretrained(dir).save_pretrained(dir) (or the Auto class of its \
             head, AutoModelForSequenceClassification …)",
            dir.display()
        );
    }
    bail!("{} has no model weights (model.safetensors)", dir.display())
}

/// A var store's parameters in module order with Hugging Face names, for every head.
pub fn named_parameters_of(vs: &VarStore) -> Vec<(String, Tensor)> {
    parameters_with_groups(vs)
        .into_iter()
        .map(|(name, tensor, _)| (name, tensor))
        .collect()
}

/// (name, tensor, var-store group) in creation order, which is the module order.
pub(crate) fn parameters_with_groups(vs: &VarStore) -> Vec<(String, Tensor, usize)> {
    let vars = vs
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

/// Refuses a config whose fp32 parameters exceed the memory this machine has available
/// (`MemAvailable`): libtorch would fail to allocate, or succeed and leave the system to
/// swap or kill the process. Every model is built on the CPU first (then copied to a GPU).
fn check_memory(config: &BertConfig) -> Result<()> {
    let Some(available) = crate::runtime::device::available_memory() else {
        return Ok(());
    };
    let footprint = super::shapes::footprint(config);
    let bytes = footprint.parameters.saturating_mul(4);
    if bytes <= u128::from(available) {
        return Ok(());
    }
    let (part, count) = &footprint.largest;
    bail!(
        "the config describes {} parameters ({} in fp32), more than the {} of memory \
         available; the largest part is {part} with {} parameters",
        footprint.parameters,
        big_size(bytes),
        crate::runtime::display::size(available),
        count
    )
}

/// A byte count that may exceed `u64`.
fn big_size(bytes: u128) -> String {
    match u64::try_from(bytes) {
        Ok(b) => crate::runtime::display::size(b),
        Err(_) => format!("{bytes} bytes"),
    }
}
