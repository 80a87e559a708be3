//! Reading and writing `model.safetensors` under Hugging Face parameter names.
//!
//! Name mapping, checkpoint → var store:
//!
//! | in the file                        | in the model                            |
//! |------------------------------------|-----------------------------------------|
//! | `bert.…`, `roberta.…` (`*For*` checkpoints) | unchanged                      |
//! | `embeddings.…`, `encoder.…`, `pooler.…` (a bare base model, e.g. all-MiniLM-L6-v2; DistilBERT's `transformer.…`) | the family's prefix added (`bert.`, `roberta.`, `distilbert.`) |
//! | `….LayerNorm.gamma` / `….LayerNorm.beta` (TF-era names) | `….LayerNorm.weight` / `.bias` |
//! | `…position_ids` (a buffer, not a parameter) | ignored                         |
//!
//! Anything else the model lacks is reported as unexpected (bert-base-uncased carries its
//! pre-training heads under `cls.`), and any parameter the file lacks stays randomly
//! initialised and is reported as missing, as transformers' load report does.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use safetensors::tensor::{Metadata, TensorView};
use safetensors::{Dtype, SafeTensors};
use tch::nn::VarStore;
use tch::{Kind, Tensor};

use super::config::BertConfig;
use super::family::Family;
use super::shapes;

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
    let fail = |e: tch::TchError| anyhow!("{}: cannot read tensor {name}: {e}", file.display());
    Tensor::f_from_data_size(view.data(), &shape, kind)
        .and_then(|t| t.f_to_kind(Kind::Float))
        .map_err(fail)
}

/// The header of a `.safetensors` file: each tensor's dtype and shape, read without the data.
#[derive(Debug, Clone)]
pub struct Header {
    pub file: PathBuf,
    /// Tensor name → (dtype, shape), as the file writes them.
    pub tensors: BTreeMap<String, (Dtype, Vec<usize>)>,
}

/// The safetensors format's own limit on a header.
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// Reads only the header of `file` (a few kilobytes), checking that the offsets it gives
/// cover the file exactly: a truncated or padded file is refused here, before any tensor is
/// read or allocated.
pub fn read_header(file: &Path) -> Result<Header> {
    let corrupt = |why: String| {
        anyhow!(
            "{} is not a valid safetensors file (truncated or corrupt?): {why}",
            file.display()
        )
    };
    let mut f = std::fs::File::open(file)
        .with_context(|| format!("cannot read weights {}", file.display()))?;
    let len = f
        .metadata()
        .with_context(|| format!("cannot read weights {}", file.display()))?
        .len();
    let mut n = [0u8; 8];
    f.read_exact(&mut n)
        .map_err(|_| corrupt(format!("{len} bytes, too short for a header")))?;
    let n = u64::from_le_bytes(n);
    if n > MAX_HEADER_BYTES || n > len - 8 {
        return Err(corrupt(format!(
            "its header claims {n} bytes in a file of {len}"
        )));
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header)
        .with_context(|| format!("cannot read weights {}", file.display()))?;
    let metadata: Metadata =
        serde_json::from_slice(&header).map_err(|e| corrupt(format!("its header: {e}")))?;
    let data = metadata.data_len() as u64;
    if data != len - 8 - n {
        return Err(corrupt(format!(
            "the header describes {data} bytes of tensors, the file holds {}",
            len - 8 - n
        )));
    }
    let tensors = metadata
        .tensors()
        .into_iter()
        .map(|(name, info)| (name, (info.dtype, info.shape.clone())))
        .collect();
    Ok(Header {
        file: file.to_path_buf(),
        tensors,
    })
}

/// A checkpoint tensor name as the var store spells it: the family's prefix (`bert.`,
/// `roberta.`) added for a bare base-model file (every parameter under it is in its
/// embeddings, encoder or pooler), TF-era LayerNorm names renamed; `None` for buffers the
/// model rebuilds. The header check and `load` both map names through here.
fn model_name(raw: &str, family: Family) -> Option<String> {
    if raw.ends_with("position_ids") || raw.ends_with("embeddings.token_type_ids") {
        return None;
    }
    let name = raw
        .replace("LayerNorm.gamma", "LayerNorm.weight")
        .replace("LayerNorm.beta", "LayerNorm.bias");
    Some(if family.base_parts().iter().any(|p| name.starts_with(p)) {
        format!("{}.{name}", family.prefix())
    } else {
        name
    })
}

/// Compares the shapes `config` implies with a weights file's header, before the model is
/// allocated. A disagreement is one line per config field at fault, naming the field, both
/// values and the first tensor that shows it (`vocab_size is 100000000000 in config.json,
/// 30522 in the weights: …word_embeddings.weight is [30522, 384] there`). Also refused:
/// more encoder layers than the file has, and integer tensors. A classifier of another size
/// is not an error: `load` replaces it and reports it, as transformers does.
pub fn check_header(config: &BertConfig, header: &Header) -> Result<()> {
    let family = config.family()?;
    let layer_prefix = format!("{}.{}.", family.prefix(), family.encoder_names().layers);
    let file = header.file.display();
    let config_file = header
        .file
        .with_file_name("config.json")
        .display()
        .to_string();
    let mut found: HashMap<String, (String, Vec<i64>)> = HashMap::new();
    let mut file_layers = 0i64;
    for (raw, (dtype, shape)) in &header.tensors {
        let Some(name) = model_name(raw, family) else {
            continue;
        };
        kind_of(*dtype, raw, &header.file)?;
        if let Some(i) = name
            .strip_prefix(layer_prefix.as_str())
            .and_then(|rest| rest.split('.').next())
            .and_then(|i| i.parse::<i64>().ok())
        {
            file_layers = file_layers.max(i.saturating_add(1));
        }
        let shape = shape
            .iter()
            .map(|&d| i64::try_from(d).unwrap_or(i64::MAX))
            .collect();
        found.insert(name, (raw.clone(), shape));
    }
    if config.num_hidden_layers > file_layers {
        let first_missing = shapes::layer(config, file_layers)
            .into_iter()
            .next()
            .map(|p| p.name)
            .unwrap_or_default();
        bail!(
            "{} is {} in {config_file}, but {file} holds {file_layers} encoder \
             layers (it has no tensor {first_missing}); does config.json belong to these \
             weights?",
            super::config::field_name(family, "num_hidden_layers"),
            config.num_hidden_layers
        );
    }
    // Field → (config value, file values seen, first tensor showing it).
    let mut by_field: Vec<(&'static str, i64, Vec<i64>, String)> = Vec::new();
    let mut others = Vec::new();
    let mut count = 0usize;
    for expected in shapes::parameters(config, file_layers) {
        let Some((raw, shape)) = found.get(&expected.name) else {
            continue;
        };
        let want = expected.shape();
        if *shape == want || !expected.name.starts_with(&format!("{}.", family.prefix())) {
            continue;
        }
        count += 1;
        let shown = format!("{raw} is {shape:?} there, {want:?} by the config");
        if shape.len() != want.len() {
            others.push(shown);
            continue;
        }
        for (dim, &size) in expected.dims.iter().zip(shape) {
            if dim.size == size {
                continue;
            }
            match by_field.iter_mut().find(|f| f.0 == dim.field) {
                Some(f) => {
                    if !f.2.contains(&size) {
                        f.2.push(size);
                    }
                }
                None => by_field.push((dim.field, dim.size, vec![size], shown.clone())),
            }
        }
    }
    if count == 0 {
        return Ok(());
    }
    let mut lines: Vec<String> = by_field
        .iter()
        .map(|(field, want, seen, example)| {
            let seen: Vec<String> = seen.iter().map(i64::to_string).collect();
            format!(
                "{field} is {want} in config.json, {} in the weights ({example})",
                seen.join(" or ")
            )
        })
        .collect();
    lines.extend(others.into_iter().take(3));
    bail!(
        "{config_file} does not describe {file} ({count} tensor{} disagree{}; does it belong \
         to these weights?): {}",
        if count == 1 { "" } else { "s" },
        if count == 1 { "s" } else { "" },
        lines.join("; ")
    )
}

/// Copies the tensors of a `.safetensors` file into the var store of a `family` model,
/// converting to fp32.
pub fn load(vs: &VarStore, file: &Path, architecture: &str, family: Family) -> Result<LoadReport> {
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
    let head = family.masked_lm_names();
    let has_head_bias = entries.iter().any(|(raw, _)| *raw == head.bias);
    let tied = ours.contains_key(head.bias);
    let (decoder_weight, decoder_bias) = (
        format!("{}.weight", head.decoder),
        format!("{}.bias", head.decoder),
    );
    let encoder = format!("{}.", family.prefix());
    for (raw, view) in entries {
        let Some(name) = model_name(raw, family) else {
            continue;
        };
        // A masked-LM head's decoder is the word-embedding table itself (tied, as in
        // transformers): a checkpoint's copy of it is no parameter of its own, and the
        // decoder's bias is the head's bias (`cls.predictions.bias`, `lm_head.bias`) under
        // another name.
        let name = if tied && name == decoder_weight {
            continue;
        } else if tied && name == decoder_bias && decoder_bias != head.bias {
            if has_head_bias {
                continue;
            }
            head.bias.to_string()
        } else {
            name
        };
        let Some(var) = ours.get(&name) else {
            unexpected.push(raw.to_string());
            continue;
        };
        let expected = var.size();
        let found: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        if expected != found {
            let entry = format!("{raw}: {found:?} in the file, {expected:?} in the config");
            // A head of another size (any tensor outside the encoder): replaced by a fresh
            // one and reported, as transformers does with `ignore_mismatched_sizes`.
            if !name.starts_with(&encoder) {
                head_mismatched.push((name, entry));
            } else {
                mismatched.push(entry);
            }
            continue;
        }
        let value = to_tensor(&view, raw, file)?;
        tch::no_grad(|| {
            let mut var = var.shallow_clone();
            var.f_copy_(&value)
        })
        .map_err(|e| anyhow!("{}: cannot load tensor {raw}: {e}", file.display()))?;
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
    crate::runtime::atomic::write(file, &bytes)
}
