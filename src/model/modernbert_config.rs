//! What a ModernBERT `config.json` says beyond BERT's fields, read as `ModernBertConfig` reads
//! it (transformers 5): which layers attend globally and which within a window, the two RoPE
//! bases, the bias switches, the head's pooling. Older checkpoints (the hub's
//! `answerdotai/ModernBERT-base`) write `global_attn_every_n_layers`, `global_rope_theta` and
//! `local_rope_theta` instead of `layer_types` and `rope_parameters`; both spellings read the
//! same. What this crate does not implement is refused, naming the field.

use anyhow::{anyhow, bail, Result};
use serde_json::{Map, Value};

/// How the sequence classifier reduces the last layer's states to one vector
/// (`classifier_pooling`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// The first token's state (`[CLS]`).
    Cls,
    /// The mean over the real tokens.
    Mean,
}

/// ModernBERT's options (see the module's note), with `ModernBertConfig`'s defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct ModernBertOptions {
    /// Per layer: true where it attends within the window (`sliding_attention`), false where
    /// to every token (`full_attention`).
    pub sliding: Vec<bool>,
    /// How far a token sees in a sliding layer: `local_attention / 2` positions either side
    /// (transformers' `sliding_window`; the mask keeps |query − key| ≤ this).
    pub half_window: i64,
    /// RoPE base of the full-attention layers (`rope_parameters.full_attention.rope_theta`).
    pub global_theta: f64,
    /// RoPE base of the sliding layers.
    pub local_theta: f64,
    pub attention_bias: bool,
    pub mlp_bias: bool,
    pub norm_bias: bool,
    pub classifier_bias: bool,
    pub decoder_bias: bool,
    pub mlp_dropout: f64,
    pub pooling: Pooling,
    /// `initializer_cutoff_factor`: new weights are drawn from a normal truncated at this
    /// many deviations (2 by default; 3 where the config writes `null`, as transformers reads
    /// it).
    pub cutoff: f64,
}

/// Reads the options from a config's fields (`map`) for `layers` encoder layers.
pub fn parse(map: &Map<String, Value>, layers: i64) -> Result<ModernBertOptions> {
    let get = |key: &str| map.get(key).filter(|v| !v.is_null());
    let flag = |key: &str, default: bool| -> Result<bool> {
        match get(key) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| anyhow!("{key} is {v}; expected true or false")),
        }
    };
    let number = |key: &str, default: f64| -> Result<f64> {
        match get(key) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .ok_or_else(|| anyhow!("{key} is {v}; expected a number")),
        }
    };
    let sliding = match get("layer_types") {
        Some(Value::Array(kinds)) => {
            if kinds.len() as i64 != layers {
                bail!(
                    "layer_types lists {} layers, num_hidden_layers is {layers}",
                    kinds.len()
                );
            }
            kinds
                .iter()
                .map(|k| match k.as_str() {
                    Some("full_attention") => Ok(false),
                    Some("sliding_attention") => Ok(true),
                    _ => bail!(
                        "layer_types lists {k}; supported: \"full_attention\", \
                         \"sliding_attention\""
                    ),
                })
                .collect::<Result<Vec<_>>>()?
        }
        Some(other) => bail!("layer_types is {other}; expected a list of layer kinds"),
        None => {
            let every = match get("global_attn_every_n_layers") {
                None => 3,
                Some(v) => v.as_i64().filter(|n| *n > 0).ok_or_else(|| {
                    anyhow!("global_attn_every_n_layers is {v}; expected a positive integer")
                })?,
            };
            (0..layers.max(0)).map(|i| i % every != 0).collect()
        }
    };
    let local_attention = match get("local_attention") {
        None => 128,
        Some(v) => v.as_i64().filter(|n| *n >= 0).ok_or_else(|| {
            anyhow!("local_attention is {v}; expected a window of tokens (a positive integer)")
        })?,
    };
    let theta = |kind: &str, legacy: &str, default: f64| -> Result<f64> {
        let field = format!("rope_parameters.{kind}");
        let value = match get("rope_parameters").and_then(|r| r.get(kind)) {
            Some(params) => {
                if let Some(t) = params.get("rope_type").filter(|t| !t.is_null()) {
                    if t.as_str() != Some("default") {
                        bail!(
                            "{field}.rope_type is {t}: only the default RoPE is supported \
                             (every published ModernBERT uses it)"
                        );
                    }
                }
                match params.get("rope_theta").filter(|t| !t.is_null()) {
                    Some(t) => t
                        .as_f64()
                        .ok_or_else(|| anyhow!("{field}.rope_theta is {t}; expected a number"))?,
                    None => number(legacy, default)?,
                }
            }
            None => number(legacy, default)?,
        };
        if !(value > 0.0 && value.is_finite()) {
            bail!("{field}.rope_theta is {value}; it must be positive");
        }
        Ok(value)
    };
    if get("rope_scaling").is_some() {
        bail!("rope_scaling is set: scaled RoPE is not supported");
    }
    let pooling = match get("classifier_pooling").map(|v| v.as_str()) {
        None | Some(Some("cls")) => Pooling::Cls,
        Some(Some("mean")) => Pooling::Mean,
        _ => bail!(
            "classifier_pooling is {}; supported: \"cls\", \"mean\"",
            map["classifier_pooling"]
        ),
    };
    let cutoff = match map.get("initializer_cutoff_factor") {
        Some(Value::Null) => 3.0,
        _ => number("initializer_cutoff_factor", 2.0)?,
    };
    if !(cutoff > 0.0 && cutoff.is_finite()) {
        bail!("initializer_cutoff_factor is {cutoff}; it must be positive");
    }
    let mlp_dropout = number("mlp_dropout", 0.0)?;
    if !(0.0..1.0).contains(&mlp_dropout) {
        bail!("mlp_dropout is {mlp_dropout}; a dropout probability lies in [0, 1)");
    }
    Ok(ModernBertOptions {
        sliding,
        half_window: local_attention / 2,
        global_theta: theta("full_attention", "global_rope_theta", 160_000.0)?,
        local_theta: theta("sliding_attention", "local_rope_theta", 10_000.0)?,
        attention_bias: flag("attention_bias", false)?,
        mlp_bias: flag("mlp_bias", false)?,
        norm_bias: flag("norm_bias", false)?,
        classifier_bias: flag("classifier_bias", false)?,
        decoder_bias: flag("decoder_bias", true)?,
        mlp_dropout,
        pooling,
        cutoff,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, layers: i64) -> Result<ModernBertOptions> {
        parse(
            serde_json::from_str::<Value>(text)?.as_object().unwrap(),
            layers,
        )
    }

    #[test]
    fn old_and_new_spellings_read_the_same() {
        let old = read(
            r#"{"global_attn_every_n_layers": 3, "global_rope_theta": 160000.0,
                "local_rope_theta": 10000.0, "local_attention": 128}"#,
            4,
        )
        .unwrap();
        let new = read(
            r#"{"layer_types": ["full_attention", "sliding_attention", "sliding_attention",
                "full_attention"], "local_attention": 128, "rope_parameters": {
                "full_attention": {"rope_theta": 160000.0, "rope_type": "default"},
                "sliding_attention": {"rope_theta": 10000.0, "rope_type": "default"}}}"#,
            4,
        )
        .unwrap();
        assert_eq!(old, new);
        assert_eq!(new.sliding, [false, true, true, false]);
        assert_eq!(new.half_window, 64);
    }

    #[test]
    fn what_is_not_implemented_is_refused_by_field() {
        let e = read(
            r#"{"rope_parameters": {"full_attention": {"rope_type": "yarn"}}}"#,
            1,
        )
        .unwrap_err();
        assert!(e
            .to_string()
            .contains("rope_parameters.full_attention.rope_type"));
        let e = read(r#"{"layer_types": ["full_attention"]}"#, 2).unwrap_err();
        assert!(e.to_string().contains("layer_types lists 1 layers"), "{e}");
        let e = read(r#"{"classifier_pooling": "max"}"#, 1).unwrap_err();
        assert!(e.to_string().contains("classifier_pooling"), "{e}");
    }
}
