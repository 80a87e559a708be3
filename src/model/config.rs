//! `config.json` as Hugging Face writes it for BERT.
//!
//! Fields we do not use are kept in `extra` (in their original order) and written back on save,
//! so a checkpoint that passes through this crate loses nothing Python relies on.
//!
//! DistilBERT's config names the same sizes differently (`dim`, `n_layers`, `n_heads`,
//! `hidden_dim`, `activation`, `dropout`, `attention_dropout`): they are read into BERT's
//! fields and written back under DistilBERT's names ([`DISTILBERT_KEYS`]), so the rest of the
//! crate knows one set of names and a saved DistilBERT config is DistilBERT's.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::disentangled::Disentangled;
use super::family::Family;
use super::modernbert_config::ModernBertOptions;
use crate::data::ProblemType;

fn d_dropout() -> f64 {
    0.1
}
fn d_positions() -> i64 {
    512
}
fn d_types() -> i64 {
    2
}
fn d_eps() -> f64 {
    1e-12
}
fn d_init() -> f64 {
    0.02
}

/// Defines a config enum read from (and written back as) the exact strings transformers uses,
/// so an unknown value fails while parsing with the field's name and the accepted values.
macro_rules! config_enum {
    ($(#[$doc:meta])* $name:ident, $field:literal, default $default:ident,
     $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)?) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "&'static str")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every accepted value, as written in `config.json`.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value as written in `config.json`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl Default for $name {
            fn default() -> Self {
                $name::$default
            }
        }

        impl std::str::FromStr for $name {
            type Err = anyhow::Error;

            fn from_str(text: &str) -> Result<Self> {
                match text {
                    $($text => Ok($name::$variant),)+
                    other => {
                        let allowed: Vec<&str> = $name::ALL.iter().map(|v| v.as_str()).collect();
                        bail!(
                            "{} {other:?} is not supported; accepted values: {}",
                            $field,
                            allowed.join(", ")
                        )
                    }
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;

            fn try_from(text: String) -> std::result::Result<Self, String> {
                text.parse().map_err(|e: anyhow::Error| e.to_string())
            }
        }

        impl From<$name> for &'static str {
            fn from(value: $name) -> Self {
                value.as_str()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

config_enum!(
    /// `hidden_act`: the feed-forward activation. Each spelling is its own variant so that
    /// `save_pretrained` writes back exactly the string the checkpoint had.
    HiddenAct, "hidden_act", default Gelu,
    /// The exact, erf-based GELU (BERT's default).
    Gelu = "gelu",
    /// transformers' `NewGELUActivation`: the tanh approximation.
    GeluNew = "gelu_new",
    /// PyTorch's `gelu(approximate="tanh")`: the same tanh approximation.
    GeluPytorchTanh = "gelu_pytorch_tanh",
    /// transformers' `FastGELUActivation`: the tanh approximation, written differently.
    GeluFast = "gelu_fast",
    Relu = "relu",
);

config_enum!(
    /// `position_embedding_type`. transformers defines three; this crate implements
    /// `absolute` and refuses the relative ones in [`BertConfig::validate`] (they need
    /// weights and attention terms that are not here), so a config naming one reads fine
    /// and is then refused with that reason rather than as an unknown word.
    PositionEmbeddingType, "position_embedding_type", default Absolute,
    Absolute = "absolute",
    RelativeKey = "relative_key",
    RelativeKeyQuery = "relative_key_query",
);

/// DistilBERT's config keys, BERT's field for each, and DistilBertConfig's default.
pub const DISTILBERT_KEYS: [(&str, &str, DefaultValue); 7] = [
    ("dim", "hidden_size", DefaultValue::Int(768)),
    ("n_layers", "num_hidden_layers", DefaultValue::Int(6)),
    ("n_heads", "num_attention_heads", DefaultValue::Int(12)),
    ("hidden_dim", "intermediate_size", DefaultValue::Int(3072)),
    ("activation", "hidden_act", DefaultValue::Text("gelu")),
    ("dropout", "hidden_dropout_prob", DefaultValue::Float(0.1)),
    (
        "attention_dropout",
        "attention_probs_dropout_prob",
        DefaultValue::Float(0.1),
    ),
];

/// ModernBERT's config keys for BERT's fields, and ModernBertConfig's default.
pub const MODERNBERT_KEYS: [(&str, &str, DefaultValue); 4] = [
    (
        "hidden_activation",
        "hidden_act",
        DefaultValue::Text("gelu"),
    ),
    ("norm_eps", "layer_norm_eps", DefaultValue::Float(1e-5)),
    (
        "embedding_dropout",
        "hidden_dropout_prob",
        DefaultValue::Float(0.0),
    ),
    (
        "attention_dropout",
        "attention_probs_dropout_prob",
        DefaultValue::Float(0.0),
    ),
];

/// BERT's fields a ModernBERT config does not have (no token types, no position table).
const NOT_MODERNBERT: [&str; 2] = ["type_vocab_size", "position_embedding_type"];

/// BERT's fields a DistilBERT config does not have (its embeddings have no token types, its
/// LayerNorms a fixed eps of 1e-12): dropped when one is written.
const NOT_DISTILBERT: [&str; 3] = [
    "type_vocab_size",
    "layer_norm_eps",
    "position_embedding_type",
];

/// A default value in a key table.
#[derive(Debug, Clone, Copy)]
pub enum DefaultValue {
    Int(i64),
    Float(f64),
    Text(&'static str),
}

impl DefaultValue {
    fn json(self) -> serde_json::Value {
        match self {
            DefaultValue::Int(v) => v.into(),
            DefaultValue::Float(v) => v.into(),
            DefaultValue::Text(v) => v.into(),
        }
    }
}

/// The name `config.json` gives BERT's `field` in a config of `family` (`dim` for DistilBERT's
/// `hidden_size`), for messages that name the field a user would edit.
pub fn field_name(family: Family, field: &'static str) -> &'static str {
    match renamed_keys(family).iter().find(|k| k.1 == field) {
        Some((theirs, _, _)) => theirs,
        None => field,
    }
}

/// The keys a family's config writes under its own names (DistilBERT's `dim`, ModernBERT's
/// `norm_eps`), with BERT's field and the family's default for each, and the BERT fields
/// its config does not have.
fn renamed_keys(family: Family) -> &'static [(&'static str, &'static str, DefaultValue)] {
    match family {
        Family::DistilBert => &DISTILBERT_KEYS,
        Family::ModernBert => &MODERNBERT_KEYS,
        _ => &[],
    }
}

fn dropped_keys(family: Family) -> &'static [&'static str] {
    match family {
        Family::DistilBert => &NOT_DISTILBERT,
        Family::ModernBert => &NOT_MODERNBERT,
        _ => &[],
    }
}

fn family_of(map: &serde_json::Map<String, serde_json::Value>) -> Option<Family> {
    map.get("model_type")
        .and_then(|v| v.as_str())
        .and_then(|kind| Family::from_model_type(kind).ok())
}

/// A config's own keys as BERT's fields (the others untouched).
fn from_family_keys(map: &mut serde_json::Map<String, serde_json::Value>, family: Family) {
    for (theirs, ours, default) in renamed_keys(family) {
        let value = map.remove(*theirs).unwrap_or_else(|| default.json());
        map.insert(ours.to_string(), value);
    }
}

/// BERT's fields back under the family's keys.
fn to_family_keys(map: &mut serde_json::Map<String, serde_json::Value>, family: Family) {
    for (theirs, ours, _) in renamed_keys(family) {
        if let Some(value) = map.remove(*ours) {
            map.insert(theirs.to_string(), value);
        }
    }
    for field in dropped_keys(family) {
        map.remove(*field);
    }
}

fn null_as_zero<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    Ok(Option::<i64>::deserialize(d)?.unwrap_or(0))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BertConfig {
    pub vocab_size: i64,
    pub hidden_size: i64,
    pub num_hidden_layers: i64,
    pub num_attention_heads: i64,
    pub intermediate_size: i64,
    #[serde(default)]
    pub hidden_act: HiddenAct,
    #[serde(default = "d_dropout")]
    pub hidden_dropout_prob: f64,
    #[serde(default = "d_dropout")]
    pub attention_probs_dropout_prob: f64,
    #[serde(default = "d_positions")]
    pub max_position_embeddings: i64,
    #[serde(default = "d_types")]
    pub type_vocab_size: i64,
    #[serde(default = "d_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "d_init")]
    pub initializer_range: f64,
    /// Some hub configs write `null` here; the embedding still pads with id 0 then.
    #[serde(default, deserialize_with = "null_as_zero")]
    pub pad_token_id: i64,
    #[serde(default)]
    pub position_embedding_type: PositionEmbeddingType,
    /// Dropout before the classifier; `None` means "use `hidden_dropout_prob`", as in HF.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classifier_dropout: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id2label: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label2id: Option<BTreeMap<String, i64>>,
    /// Every other field of the file, preserved for saving.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl BertConfig {
    /// Reads and checks a `config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let config = Self::read(path)?;
        config
            .validate()
            .with_context(|| format!("in {}", path.display()))?;
        Ok(config)
    }

    /// Reads a `config.json` and checks only that it describes a BERT
    /// ([`validate_architecture`](Self::validate_architecture)); the sizes are checked later,
    /// so that loading can first compare them with the weights and name the tensor a
    /// mistyped size contradicts.
    pub fn read(path: &Path) -> Result<Self> {
        const MAX_BYTES: u64 = 16 << 20;
        let len = std::fs::metadata(path)
            .with_context(|| format!("cannot read model config {}", path.display()))?
            .len();
        if len > MAX_BYTES {
            bail!(
                "{} has {len} bytes; a config.json is a few kilobytes (at most {MAX_BYTES} \
                 accepted)",
                path.display()
            );
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read model config {}", path.display()))?;
        let config = Self::from_json(&text)
            .with_context(|| format!("{} is not a BERT config.json", path.display()))?;
        config
            .validate_architecture()
            .with_context(|| format!("in {}", path.display()))?;
        Ok(config)
    }

    /// A config from the text of a `config.json` (DistilBERT's keys read as BERT's fields).
    pub fn from_json(text: &str) -> Result<Self> {
        let mut value: serde_json::Value = serde_json::from_str(text)?;
        if let Some(map) = value.as_object_mut() {
            if let Some(family) = family_of(map) {
                from_family_keys(map, family);
            }
            if map.get("model_type").and_then(|v| v.as_str())
                == Some(Family::DebertaV2.model_type())
            {
                // DebertaV2Config's defaults where they differ from BERT's.
                map.entry("type_vocab_size").or_insert(0.into());
                map.entry("layer_norm_eps").or_insert(1e-7.into());
            }
        }
        Ok(serde_json::from_value(value)?)
    }

    /// A config of the given shape with Hugging Face's defaults elsewhere (for random models).
    pub fn new(vocab: i64, hidden: i64, layers: i64, heads: i64, intermediate: i64) -> Self {
        let mut config: BertConfig = serde_json::from_value(serde_json::json!({
            "vocab_size": vocab, "hidden_size": hidden, "num_hidden_layers": layers,
            "num_attention_heads": heads, "intermediate_size": intermediate,
        }))
        .expect("a complete literal config");
        config
            .extra
            .insert("model_type".into(), serde_json::json!("bert"));
        config
    }

    /// bert-base-uncased's shape: 12 layers of 768 with 12 heads.
    pub fn bert_base() -> Self {
        BertConfig::new(30522, 768, 12, 12, 3072)
    }

    /// Refuses what this BERT cannot run, naming the field: other architectures (their
    /// layers and weight names differ) and BERT options we do not implement.
    pub fn validate(&self) -> Result<()> {
        self.validate_architecture()?;
        self.validate_sizes()
    }

    /// The architecture part of [`validate`](Self::validate): an encoder of a supported
    /// family (`model_type`, see [`Family`]) whose `architectures` are that family's, not a
    /// decoder.
    pub fn validate_architecture(&self) -> Result<()> {
        let family = self.family()?;
        if let Some(archs) = self.extra.get("architectures").and_then(|v| v.as_array()) {
            for arch in archs.iter().filter_map(|a| a.as_str()) {
                if Family::of_architecture(arch) != Some(family) {
                    bail!(
                        "architectures lists {arch:?}, which is not a {} class (model_type \
                         {:?}); this crate runs model_type {}",
                        family.class_prefix(),
                        family.model_type(),
                        Family::supported()
                    );
                }
            }
        }
        if family == Family::DebertaV2 {
            self.deberta()?;
        }
        if family == Family::ModernBert {
            self.modernbert()?;
            self.classifier_activation()?;
        }
        if self
            .extra
            .get("sinusoidal_pos_embds")
            .and_then(|v| v.as_bool())
            == Some(true)
        {
            bail!(
                "sinusoidal_pos_embds is true: DistilBERT with fixed sinusoidal positions is \
                 not supported (every published DistilBERT learns its positions)"
            );
        }
        for flag in ["is_decoder", "add_cross_attention"] {
            if self.extra.get(flag).and_then(|v| v.as_bool()) == Some(true) {
                bail!(
                    "{flag} is true: decoder BERTs (causal or cross-attention) are not supported"
                );
            }
        }
        Ok(())
    }

    /// The sizes and probabilities part of [`validate`](Self::validate).
    pub fn validate_sizes(&self) -> Result<()> {
        if self.num_labels() == 0 {
            bail!("num_labels is 0: a classifier needs at least one class");
        }
        let family = self.family()?;
        let name = |field| field_name(family, field);
        for (field, value) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
            ("embedding_size", self.embedding_size()),
        ] {
            // DeBERTa-v3 has no token types: `type_vocab_size` 0.
            let none_allowed = field == "type_vocab_size" && family == Family::DebertaV2;
            if value <= 0 && !(none_allowed && value == 0) {
                bail!("{} is {value}; it must be at least 1", name(field));
            }
        }
        for (field, p) in [
            ("hidden_dropout_prob", self.hidden_dropout_prob),
            (
                "attention_probs_dropout_prob",
                self.attention_probs_dropout_prob,
            ),
            (
                "classifier_dropout",
                self.classifier_dropout.unwrap_or_default(),
            ),
            ("pooler_dropout", self.sequence_dropouts().0),
            (
                if family == Family::DistilBert {
                    "seq_classif_dropout"
                } else {
                    "cls_dropout"
                },
                self.sequence_dropouts().1,
            ),
            ("qa_dropout", self.span_dropout()),
        ] {
            if !(0.0..1.0).contains(&p) {
                bail!(
                    "{} is {p}; a dropout probability lies in [0, 1)",
                    name(field)
                );
            }
        }
        if !(self.layer_norm_eps > 0.0 && self.layer_norm_eps.is_finite()) {
            bail!(
                "layer_norm_eps is {}; it must be positive",
                self.layer_norm_eps
            );
        }
        if !(0..self.vocab_size).contains(&self.pad_token_id) {
            bail!(
                "pad_token_id {} is outside the vocabulary (vocab_size {})",
                self.pad_token_id,
                self.vocab_size
            );
        }
        if self.hidden_size % self.num_attention_heads != 0 {
            bail!(
                "{} {} is not a multiple of {} {}",
                name("hidden_size"),
                self.hidden_size,
                name("num_attention_heads"),
                self.num_attention_heads
            );
        }
        if self.position_embedding_type != PositionEmbeddingType::Absolute {
            bail!(
                "position_embedding_type {:?} is not supported: this crate implements \
                 \"absolute\" position embeddings only",
                self.position_embedding_type.as_str()
            );
        }
        Ok(())
    }

    /// Number of classes of the classification head, as transformers reads it: the size of
    /// `id2label` (transformers 5 writes no `num_labels`), else `num_labels`, else 2.
    pub fn num_labels(&self) -> usize {
        if let Some(names) = &self.id2label {
            return names.len();
        }
        ["num_labels", "_num_labels"]
            .iter()
            .find_map(|k| self.extra.get(*k).and_then(|v| v.as_u64()))
            .map_or(2, |n| n as usize)
    }

    /// Sets a head of `n` classes named `LABEL_0` … as transformers does, keeping existing
    /// names when the count already matches.
    pub fn set_num_labels(&mut self, n: usize) {
        if self.id2label.is_some() && self.num_labels() == n {
            return;
        }
        self.set_labels(&(0..n).map(|i| format!("LABEL_{i}")).collect::<Vec<_>>());
    }

    /// Names the classes (CoLA: `unacceptable`, `acceptable`), so a reloaded model keeps them.
    pub fn set_labels(&mut self, names: &[String]) {
        // id2label now says how many classes there are; a stale count must not contradict it.
        self.extra.remove("num_labels");
        self.extra.remove("_num_labels");
        self.id2label = Some(
            names
                .iter()
                .enumerate()
                .map(|(i, n)| (i.to_string(), n.clone()))
                .collect(),
        );
        self.label2id = Some(
            names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.clone(), i as i64))
                .collect(),
        );
    }

    /// The head's problem type, as transformers decides it: `problem_type` when the file
    /// names one, else regression for a single output and single-label classification
    /// otherwise (transformers picks multi-label only from float labels at training time, so
    /// a multi-label model must say so; [`BertConfig::set_problem_type`] does).
    pub fn problem_type(&self) -> Result<ProblemType> {
        match self.extra.get("problem_type") {
            Some(serde_json::Value::String(name)) => name.parse(),
            None | Some(serde_json::Value::Null) => Ok(if self.num_labels() == 1 {
                ProblemType::Regression
            } else {
                ProblemType::SingleLabelClassification
            }),
            Some(other) => bail!("problem_type is {other}; expected a string"),
        }
    }

    /// Records the problem type in `config.json`, so transformers and a reload agree.
    pub fn set_problem_type(&mut self, problem: ProblemType) {
        self.extra
            .insert("problem_type".into(), serde_json::json!(problem.name()));
    }

    /// Name of class `i` (`LABEL_i` when unnamed).
    pub fn label_name(&self, i: usize) -> String {
        self.id2label
            .as_ref()
            .and_then(|m| m.get(&i.to_string()).cloned())
            .unwrap_or_else(|| format!("LABEL_{i}"))
    }

    /// Dropout before a token classifier (and a BERT's or RoBERTa's sequence head):
    /// `classifier_dropout`, else `hidden_dropout_prob` (DistilBERT's `dropout`).
    pub fn classifier_dropout_prob(&self) -> f64 {
        self.classifier_dropout.unwrap_or(self.hidden_dropout_prob)
    }

    /// The width of the embeddings: ELECTRA's `embedding_size` (projected up to
    /// `hidden_size` by `embeddings_project` when it differs), `hidden_size` for the other
    /// families.
    pub fn embedding_size(&self) -> i64 {
        match self.family() {
            Ok(Family::Electra) => self
                .extra
                .get("embedding_size")
                .and_then(|v| v.as_i64())
                .unwrap_or(self.hidden_size),
            _ => self.hidden_size,
        }
    }

    /// A number from `extra` (a field this struct does not name), or `default`.
    fn extra_f64(&self, key: &str, default: f64) -> f64 {
        self.extra
            .get(key)
            .and_then(|v| v.as_f64())
            .unwrap_or(default)
    }

    /// Dropout in the sequence classifier's head, before its dense layer (where it has one)
    /// and before its output layer: the classifier dropout for BERT, RoBERTa and ELECTRA;
    /// none and `seq_classif_dropout` (0.2 by default) for DistilBERT; `pooler_dropout`
    /// (0) and `cls_dropout` (else `hidden_dropout_prob`) for DeBERTa.
    pub fn sequence_dropouts(&self) -> (f64, f64) {
        let p = self.classifier_dropout_prob();
        match self.family() {
            Ok(Family::DistilBert) => (0.0, self.extra_f64("seq_classif_dropout", 0.2)),
            Ok(Family::DebertaV2) => (
                self.extra_f64("pooler_dropout", 0.0),
                self.extra_f64("cls_dropout", self.hidden_dropout_prob),
            ),
            Ok(Family::Bert | Family::ModernBert) => (0.0, p),
            _ => (p, p),
        }
    }

    /// DeBERTa's `pooler_hidden_act` (the `ContextPooler`'s activation, GELU by default).
    pub fn pooler_hidden_act(&self) -> Result<HiddenAct> {
        self.extra_activation("pooler_hidden_act")
    }

    /// An activation named in `extra` under `key` (a field this struct does not name), GELU
    /// where absent or null.
    fn extra_activation(&self, key: &str) -> Result<HiddenAct> {
        match self.extra.get(key) {
            None | Some(serde_json::Value::Null) => Ok(HiddenAct::Gelu),
            Some(serde_json::Value::String(name)) => {
                name.parse().with_context(|| format!("in the field {key}"))
            }
            Some(other) => bail!("{key} is {other}; expected a string"),
        }
    }

    /// Whether the embeddings add token types: the family has them and, for DeBERTa, whose
    /// v3 models have none, `type_vocab_size` is positive.
    pub fn has_token_types(&self) -> bool {
        self.family().is_ok_and(|f| f.token_types()) && self.type_vocab_size > 0
    }

    /// ModernBERT's options beyond BERT's fields (see [`ModernBertOptions`]).
    pub fn modernbert(&self) -> Result<ModernBertOptions> {
        super::modernbert_config::parse(&self.extra, self.num_hidden_layers)
    }

    /// ModernBERT's `classifier_activation`: the activation of its prediction head (GELU by
    /// default).
    pub fn classifier_activation(&self) -> Result<HiddenAct> {
        self.extra_activation("classifier_activation")
    }

    /// Whether the embeddings add absolute positions: every family's do but ModernBERT's
    /// (RoPE) and DeBERTa's with `position_biased_input` false (v3), whose positions enter
    /// the attention only.
    pub fn has_position_embeddings(&self) -> bool {
        if matches!(self.family(), Ok(Family::ModernBert)) {
            return false;
        }
        !matches!(self.family(), Ok(Family::DebertaV2))
            || self
                .extra
                .get("position_biased_input")
                .and_then(|v| v.as_bool())
                .unwrap_or(true)
    }

    /// Dropout before the question-answering head: DistilBERT's `qa_dropout` (0.1 by
    /// default), ModernBERT's `classifier_dropout`; BERT's and RoBERTa's heads have none.
    pub fn span_dropout(&self) -> f64 {
        match self.family() {
            Ok(Family::DistilBert) => self.extra_f64("qa_dropout", 0.1),
            Ok(Family::ModernBert) => self.classifier_dropout_prob(),
            _ => 0.0,
        }
    }

    /// The encoder family `model_type` names (BERT when the field is absent, as in configs
    /// written before transformers recorded it).
    pub fn family(&self) -> Result<Family> {
        match self.extra.get("model_type").and_then(|v| v.as_str()) {
            Some(kind) => Family::from_model_type(kind),
            None => Ok(Family::Bert),
        }
    }

    /// The longest row the position table can number: `max_position_embeddings`, less the
    /// positions RoBERTa skips below `pad_token_id + 1` (514 − 2 = 512 for roberta-base).
    pub fn max_tokens(&self) -> i64 {
        let first = self
            .family()
            .map_or(0, |f| f.first_position(self.pad_token_id));
        self.max_position_embeddings - first
    }

    /// The same config for another family (`model_type`), for random models in tests and
    /// notebooks; nothing else changes (RoBERTa checkpoints also have `pad_token_id` 1 and
    /// `type_vocab_size` 1: set those as the tokenizer needs).
    pub fn set_family(&mut self, family: Family) {
        self.extra
            .insert("model_type".into(), serde_json::json!(family.model_type()));
    }

    /// The JSON written by `save_pretrained`.
    pub fn to_json(&self, architecture: &str) -> Result<String> {
        let mut config = self.clone();
        config
            .extra
            .insert("architectures".into(), serde_json::json!([architecture]));
        config
            .extra
            .entry("model_type")
            .or_insert(serde_json::json!("bert"));
        let mut value = serde_json::to_value(&config)?;
        if let Some(map) = value.as_object_mut() {
            if let Some(family) = family_of(map) {
                to_family_keys(map, family);
            }
        }
        Ok(serde_json::to_string_pretty(&value)?)
    }
}

impl BertConfig {
    /// DeBERTa's relative-attention options (`None` when `relative_attention` is false, then
    /// only absolute positions, if any), with DebertaV2Config's defaults; what this crate
    /// does not implement is refused, naming the field.
    pub fn deberta(&self) -> Result<Option<Disentangled>> {
        let c = self;
        let get = |key: &str| c.extra.get(key).filter(|v| !v.is_null());
        let int = |key: &str, default: i64| -> Result<i64> {
            match get(key) {
                None => Ok(default),
                Some(v) => v
                    .as_i64()
                    .ok_or_else(|| anyhow::anyhow!("{key} is {v}; expected an integer")),
            }
        };
        let flag = |key: &str, default: bool| -> Result<bool> {
            match get(key) {
                None => Ok(default),
                Some(v) => v
                    .as_bool()
                    .ok_or_else(|| anyhow::anyhow!("{key} is {v}; expected true or false")),
            }
        };
        if int("conv_kernel_size", 0)? > 0 {
            bail!(
                "conv_kernel_size is {}: DeBERTa-v2's convolution after the first layer (the \
                 xlarge models) is not supported; DeBERTa-v3 models have none",
                int("conv_kernel_size", 0)?
            );
        }
        if let Some(e) = get("embedding_size") {
            if e.as_i64() != Some(c.hidden_size) {
                bail!(
                    "embedding_size is {e}, hidden_size {}: DeBERTa's embed_proj is not \
                     supported",
                    c.hidden_size
                );
            }
        }
        if let Some(size) = get("attention_head_size") {
            if size.as_i64() != Some(c.hidden_size / c.num_attention_heads.max(1)) {
                bail!(
                    "attention_head_size is {size}; only hidden_size / num_attention_heads is \
                     supported"
                );
            }
        }
        if let Some(size) = get("pooler_hidden_size") {
            if size.as_i64() != Some(c.hidden_size) {
                bail!(
                    "pooler_hidden_size is {size}, hidden_size {}: a pooler of another width \
                     is not supported",
                    c.hidden_size
                );
            }
        }
        if !flag("relative_attention", false)? {
            return Ok(None);
        }
        let kinds: Vec<String> = match get("pos_att_type") {
            None => Vec::new(),
            Some(serde_json::Value::String(s)) => s
                .to_lowercase()
                .split('|')
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect(),
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<_>>()
                .ok_or_else(|| anyhow::anyhow!("pos_att_type lists a non-string: {items:?}"))?,
            Some(other) => {
                bail!("pos_att_type is {other}; expected a list such as [\"p2c\", \"c2p\"]")
            }
        };
        if let Some(other) = kinds.iter().find(|k| !["c2p", "p2c"].contains(&k.as_str())) {
            bail!("pos_att_type lists {other:?}; supported: \"c2p\", \"p2c\"");
        }
        let (c2p, p2c) = (
            kinds.iter().any(|k| k == "c2p"),
            kinds.iter().any(|k| k == "p2c"),
        );
        if (c2p || p2c) && !flag("share_att_key", false)? {
            bail!(
                "share_att_key is false: separate position projections (pos_key_proj, \
                 pos_query_proj) are not supported; DeBERTa-v3 models share the attention keys"
            );
        }
        let norm = match get("norm_rel_ebd") {
            None => false,
            Some(serde_json::Value::String(s)) => {
                let parts: Vec<String> = s
                    .to_lowercase()
                    .split('|')
                    .map(|p| p.trim().to_string())
                    .collect();
                if let Some(other) = parts
                    .iter()
                    .find(|p| !["none", "layer_norm"].contains(&p.as_str()))
                {
                    bail!("norm_rel_ebd has {other:?}; supported: \"layer_norm\", \"none\"");
                }
                parts.iter().any(|p| p == "layer_norm")
            }
            Some(other) => bail!("norm_rel_ebd is {other}; expected a string"),
        };
        let mut max_relative = int("max_relative_positions", -1)?;
        if max_relative < 1 {
            max_relative = c.max_position_embeddings;
        }
        let buckets = int("position_buckets", -1)?;
        let span = if buckets > 0 { buckets } else { max_relative };
        if buckets > 0 && (buckets < 4 || max_relative <= buckets / 2 + 1) {
            bail!(
                "position_buckets is {buckets} and max_relative_positions {max_relative}: the \
                 log buckets need at least 4 buckets and max_relative_positions above half of \
                 them"
            );
        }
        Ok(Some(Disentangled {
            span,
            buckets,
            max_relative,
            c2p,
            p2c,
            norm,
        }))
    }
}
