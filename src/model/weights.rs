//! Reading and writing `model.safetensors` under Hugging Face parameter names.
//!
//! Name mapping, checkpoint → var store:
//!
//! | in the file                        | in the model                            |
//! |------------------------------------|-----------------------------------------|
//! | `bert.…` (BertFor* checkpoints)    | unchanged                               |
//! | `embeddings.…`, `encoder.…`, `pooler.…` (bare `BertModel`, e.g. all-MiniLM-L6-v2) | `bert.` prefixed |
//! | `….LayerNorm.gamma` / `….LayerNorm.beta` (TF-era names) | `….LayerNorm.weight` / `.bias` |
//! | `…position_ids` (a buffer, not a parameter) | ignored                         |
//!
//! Anything else the model lacks is reported as unexpected (bert-base-uncased carries its
//! pre-training heads under `cls.`), and any parameter the file lacks stays randomly
//! initialised and is reported as missing, as transformers' load report does.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use tch::nn::VarStore;
use tch::{Kind, Tensor};

/// What matched and what did not when a checkpoint was loaded.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub checkpoint: PathBuf,
    pub architecture: String,
    /// Model parameters absent from the file (initialised at random).
    pub missing: Vec<String>,
    /// File tensors the model has no place for (ignored).
    pub unexpected: Vec<String>,
    /// Classifier tensors whose shape differs (a head for another number of classes):
    /// newly initialised, as transformers does with `ignore_mismatched_sizes=True`.
    pub mismatched: Vec<String>,
}

impl LoadReport {
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.mismatched.is_empty()
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.checkpoint.display();
        if self.is_clean() {
            return write!(
                f,
                "All weights of {} were loaded from {at}.",
                self.architecture
            );
        }
        if !self.unexpected.is_empty() {
            writeln!(
                f,
                "Some weights of the checkpoint at {at} were not used by {}: {:?}",
                self.architecture, self.unexpected
            )?;
        }
        if !self.mismatched.is_empty() {
            writeln!(
                f,
                "Some weights of {} were not initialized from the checkpoint at {at} and are \
                 newly initialized because the shapes did not match: {:?}",
                self.architecture, self.mismatched
            )?;
        }
        if !self.missing.is_empty() {
            writeln!(
                f,
                "Some weights of {} were not initialized from the checkpoint at {at} and are \
                 newly initialized: {:?}",
                self.architecture, self.missing
            )?;
            write!(
                f,
                "You should probably train this model on a downstream task before using it \
                 for predictions."
            )?;
        }
        Ok(())
    }
}

/// Maps a checkpoint tensor name to our parameter name, `None` for buffers we skip.
fn our_name(raw: &str, ours: &HashMap<String, Tensor>) -> Option<String> {
    // Buffers some files carry; the model rebuilds them.
    if raw.ends_with("position_ids") || raw.ends_with("embeddings.token_type_ids") {
        return None;
    }
    let name = raw
        .replace("LayerNorm.gamma", "LayerNorm.weight")
        .replace("LayerNorm.beta", "LayerNorm.bias");
    if ours.contains_key(&name) {
        return Some(name);
    }
    let prefixed = format!("bert.{name}");
    Some(if ours.contains_key(&prefixed) {
        prefixed
    } else {
        name
    })
}

fn kind_of(dtype: Dtype, name: &str, file: &Path) -> Result<Kind> {
    Ok(match dtype {
        Dtype::F32 => Kind::Float,
        Dtype::F16 => Kind::Half,
        Dtype::BF16 => Kind::BFloat16,
        Dtype::F64 => Kind::Double,
        other => bail!(
            "{}: tensor {name} has dtype {other:?}; only floating-point weights are supported",
            file.display()
        ),
    })
}

fn to_tensor(view: &TensorView, name: &str, file: &Path) -> Result<Tensor> {
    let kind = kind_of(view.dtype(), name, file)?;
    let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
    Ok(Tensor::from_data_size(view.data(), &shape, kind).to_kind(Kind::Float))
}

/// Copies the tensors of a `.safetensors` file into the var store, converting to fp32.
pub fn load(vs: &mut VarStore, file: &Path, architecture: &str) -> Result<LoadReport> {
    let bytes =
        std::fs::read(file).with_context(|| format!("cannot read weights {}", file.display()))?;
    let tensors = SafeTensors::deserialize(&bytes).map_err(|e| {
        anyhow!(
            "{} is not a valid safetensors file (truncated or corrupt?): {e}",
            file.display()
        )
    })?;
    let ours = vs.variables();
    let mut loaded = std::collections::HashSet::new();
    let mut unexpected = Vec::new();
    let mut mismatched = Vec::new();
    let mut head_mismatched = Vec::new();
    // Sorted, so that reports and errors come out the same on every run.
    let mut entries: Vec<(&str, TensorView)> = tensors.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    for (raw, view) in entries {
        let Some(name) = our_name(raw, &ours) else {
            continue;
        };
        let Some(var) = ours.get(&name) else {
            unexpected.push(raw.to_string());
            continue;
        };
        let expected = var.size();
        let found: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        if expected != found {
            let entry = format!("{raw}: {found:?} in the file, {expected:?} in the config");
            if name.starts_with("classifier.") {
                head_mismatched.push((name, entry));
            } else {
                mismatched.push(entry);
            }
            continue;
        }
        let value = to_tensor(&view, raw, file)?.to_device(var.device());
        tch::no_grad(|| {
            let mut var = var.shallow_clone();
            var.copy_(&value);
        });
        loaded.insert(name);
    }
    if !mismatched.is_empty() {
        let shown = mismatched.len().min(6);
        bail!(
            "{}: {} tensors have shapes that disagree with config.json (does it belong to \
             these weights?):\n  {}{}",
            file.display(),
            mismatched.len(),
            mismatched[..shown].join("\n  "),
            if mismatched.len() > shown {
                "\n  …"
            } else {
                ""
            }
        );
    }
    let mut missing: Vec<String> = ours
        .keys()
        .filter(|k| !loaded.contains(*k) && !head_mismatched.iter().any(|(n, _)| n == *k))
        .cloned()
        .collect();
    missing.sort();
    unexpected.sort();
    Ok(LoadReport {
        checkpoint: file.parent().unwrap_or(file).to_path_buf(),
        architecture: architecture.to_string(),
        missing,
        unexpected,
        mismatched: head_mismatched
            .into_iter()
            .map(|(_, entry)| entry)
            .collect(),
    })
}

/// Writes named tensors as fp32 `model.safetensors` (with `{"format": "pt"}` metadata, which
/// transformers checks) through a temporary file.
pub fn save(named: &[(String, Tensor)], file: &Path) -> Result<PathBuf> {
    let mut buffers = Vec::with_capacity(named.len());
    for (name, tensor) in named {
        let t = tensor
            .detach()
            .to_device(tch::Device::Cpu)
            .to_kind(Kind::Float)
            .contiguous();
        let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
        let values = Vec::<f32>::try_from(t.flatten(0, -1))
            .with_context(|| format!("cannot read tensor {name}"))?;
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        buffers.push((name.clone(), shape, bytes));
    }
    let views = buffers
        .iter()
        .map(|(name, shape, bytes)| {
            TensorView::new(Dtype::F32, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| anyhow!("tensor {name}: {e}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    let bytes = safetensors::serialize(views, Some(metadata))
        .map_err(|e| anyhow!("cannot serialise {}: {e}", file.display()))?;
    crate::atomic::write(file, &bytes)
}
