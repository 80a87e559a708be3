//! The encoder families this crate runs, chosen by `model_type` in `config.json`, and what
//! differs between them where the rest of the crate builds, loads and saves a model.
//!
//! | family | `model_type` | parameters under | positions | sequence head | masked-LM head |
//! |---|---|---|---|---|---|
//! | BERT | `bert` | `bert.` | from 0 | `bert.pooler.dense` → tanh → `classifier` | `cls.predictions.*` |
//! | RoBERTa | `roberta` | `roberta.` | from `pad_token_id + 1` | `<s>` → `classifier.dense` → tanh → `classifier.out_proj` | `lm_head.*` |
//! | XLM-RoBERTa | `xlm-roberta` | `roberta.` | as RoBERTa | as RoBERTa | as RoBERTa |
//! | ELECTRA | `electra` | `electra.` | from 0 | `[CLS]` → `classifier.dense` → GELU → `classifier.out_proj` | `generator_predictions.*`, `generator_lm_head` |
//! | DeBERTa-v2/v3 | `deberta-v2` | `deberta.` | relative ([`Disentangled`](super::disentangled::Disentangled)) | `[CLS]` → `pooler.dense` → `pooler_hidden_act` → `classifier` | as BERT's (`cls.predictions.*`) |
//! | DistilBERT | `distilbert` | `distilbert.` | from 0 | `[CLS]` → `pre_classifier` → ReLU → `classifier` | `vocab_transform`, `vocab_layer_norm`, `vocab_projector` |
//! | ModernBERT | `modernbert` | `model.` | rotary (RoPE) | `[CLS]` or mean → `head.dense` → `classifier_activation` → `head.norm` → `classifier` | `head.*`, `decoder` |
//!
//! RoBERTa's and ELECTRA's encoder layers are BERT's (`RobertaLayer`, `ElectraLayer`), and
//! DistilBERT's `TransformerBlock` is the same post-norm layer under other names
//! ([`EncoderNames`]) without token types, so one encoder serves all of them; the families
//! differ in the embeddings (ELECTRA's may be narrower than its layers, `embedding_size`, and
//! are then projected up by `embeddings_project`), the names, and the heads. DeBERTa-v2's
//! layers are BERT's too, but for its attention scores, which add relative-position terms
//! (`model/disentangled.rs`). ModernBERT's pre-norm layers are its own (`model/modernbert.rs`);
//! every ModernBERT head runs its `head` (dense, activation, norm) first, and its span head is
//! called `classifier`.

use anyhow::{bail, Result};

/// An encoder family (see the module's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Bert,
    Roberta,
    XlmRoberta,
    DistilBert,
    Electra,
    DebertaV2,
    ModernBert,
}

impl Family {
    /// Every family, in the order error messages list them.
    pub const ALL: [Family; 7] = [
        Family::Bert,
        Family::Roberta,
        Family::XlmRoberta,
        Family::DistilBert,
        Family::Electra,
        Family::DebertaV2,
        Family::ModernBert,
    ];

    /// `model_type` as `config.json` writes it.
    pub fn model_type(self) -> &'static str {
        match self {
            Family::Bert => "bert",
            Family::Roberta => "roberta",
            Family::XlmRoberta => "xlm-roberta",
            Family::DistilBert => "distilbert",
            Family::Electra => "electra",
            Family::DebertaV2 => "deberta-v2",
            Family::ModernBert => "modernbert",
        }
    }

    /// The family of a `model_type`; another one is an error listing the supported ones.
    pub fn from_model_type(kind: &str) -> Result<Self> {
        match Self::ALL.into_iter().find(|f| f.model_type() == kind) {
            Some(family) => Ok(family),
            None => bail!(
                "model_type is {kind:?}: this crate runs model_type {} (a {kind} model has \
                 other layers and weight names)",
                Self::supported()
            ),
        }
    }

    /// The supported `model_type`s, quoted, for messages.
    pub fn supported() -> String {
        Self::ALL
            .iter()
            .map(|f| format!("{:?}", f.model_type()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// transformers' `base_model_prefix`: the encoder's parameters live under it.
    pub fn prefix(self) -> &'static str {
        match self {
            Family::Bert => "bert",
            Family::Roberta | Family::XlmRoberta => "roberta",
            Family::DistilBert => "distilbert",
            Family::Electra => "electra",
            Family::DebertaV2 => "deberta",
            Family::ModernBert => "model",
        }
    }

    /// The start of the family's class names (`RobertaForTokenClassification`).
    pub fn class_prefix(self) -> &'static str {
        match self {
            Family::Bert => "Bert",
            Family::Roberta => "Roberta",
            Family::XlmRoberta => "XLMRoberta",
            Family::DistilBert => "DistilBert",
            Family::Electra => "Electra",
            Family::DebertaV2 => "DebertaV2",
            Family::ModernBert => "ModernBert",
        }
    }

    /// The family whose class names `architecture` starts with.
    pub fn of_architecture(architecture: &str) -> Option<Self> {
        // Longest prefix first: "XLMRoberta…" is not read as another family's.
        let mut all = Self::ALL;
        all.sort_by_key(|f| std::cmp::Reverse(f.class_prefix().len()));
        all.into_iter()
            .find(|f| architecture.starts_with(f.class_prefix()))
    }

    /// The position id of a row's first token: RoBERTa numbers positions from the padding
    /// id plus one (`create_position_ids_from_input_ids`), BERT from 0.
    pub fn first_position(self, pad_token_id: i64) -> i64 {
        match self {
            Family::Bert
            | Family::DistilBert
            | Family::Electra
            | Family::DebertaV2
            | Family::ModernBert => 0,
            Family::Roberta | Family::XlmRoberta => pad_token_id + 1,
        }
    }

    /// Whether the embeddings can add a token-type table (`token_type_embeddings`); DistilBERT
    /// has none and its tokenizer gives no `token_type_ids`, so a pair's types are ignored.
    /// (DeBERTa-v2 has one only when `type_vocab_size` is positive: see
    /// [`BertConfig::has_token_types`](super::BertConfig::has_token_types).)
    pub fn token_types(self) -> bool {
        !matches!(self, Family::DistilBert | Family::ModernBert)
    }

    /// Where the encoder's parts live under [`prefix`](Self::prefix). ModernBERT's layers
    /// are not BERT's (`model/modernbert.rs` names their parts); only `layers` applies to it.
    pub fn encoder_names(self) -> EncoderNames {
        match self {
            Family::ModernBert => EncoderNames {
                layers: "layers",
                ..Family::Bert.encoder_names()
            },
            Family::DistilBert => EncoderNames {
                layers: "transformer.layer",
                query: "attention.q_lin",
                key: "attention.k_lin",
                value: "attention.v_lin",
                attention_output: "attention.out_lin",
                attention_norm: "sa_layer_norm",
                intermediate: "ffn.lin1",
                output: "ffn.lin2",
                output_norm: "output_layer_norm",
            },
            Family::DebertaV2 => EncoderNames {
                query: "attention.self.query_proj",
                key: "attention.self.key_proj",
                value: "attention.self.value_proj",
                ..Family::Bert.encoder_names()
            },
            _ => EncoderNames {
                layers: "encoder.layer",
                query: "attention.self.query",
                key: "attention.self.key",
                value: "attention.self.value",
                attention_output: "attention.output.dense",
                attention_norm: "attention.output.LayerNorm",
                intermediate: "intermediate.dense",
                output: "output.dense",
                output_norm: "output.LayerNorm",
            },
        }
    }

    /// The top-level modules of the family's base model: a bare base-model checkpoint
    /// (`embeddings.…`, `encoder.…`) names its tensors from these, without the prefix.
    pub fn base_parts(self) -> &'static [&'static str] {
        match self {
            Family::DistilBert => &["embeddings.", "transformer."],
            Family::Electra => &["embeddings.", "embeddings_project.", "encoder."],
            Family::DebertaV2 => &["embeddings.", "encoder."],
            Family::ModernBert => &["embeddings.", "layers.", "final_norm."],
            _ => &["embeddings.", "encoder.", "pooler."],
        }
    }

    /// The sequence classifier's head after the encoder (see the module's table).
    pub fn sequence_head(self) -> SequenceHead {
        match self {
            Family::Bert => SequenceHead {
                dense: None,
                norm: None,
                out: "classifier",
            },
            Family::ModernBert => SequenceHead {
                dense: Some(("head.dense", HeadActivation::ClassifierActivation)),
                norm: Some("head.norm"),
                out: "classifier",
            },
            Family::Roberta | Family::XlmRoberta => SequenceHead {
                dense: Some(("classifier.dense", HeadActivation::Tanh)),
                norm: None,
                out: "classifier.out_proj",
            },
            Family::Electra => SequenceHead {
                dense: Some(("classifier.dense", HeadActivation::Gelu)),
                norm: None,
                out: "classifier.out_proj",
            },
            Family::DebertaV2 => SequenceHead {
                dense: Some(("pooler.dense", HeadActivation::PoolerHiddenAct)),
                norm: None,
                out: "classifier",
            },
            Family::DistilBert => SequenceHead {
                dense: Some(("pre_classifier", HeadActivation::Relu)),
                norm: None,
                out: "classifier",
            },
        }
    }

    /// Whether the masked-LM head applies the exact GELU whatever the encoder's `hidden_act`
    /// (RoBERTa's `lm_head`, ELECTRA's `generator_predictions`); BERT's, DistilBERT's and
    /// DeBERTa's apply `hidden_act`.
    pub fn masked_lm_exact_gelu(self) -> bool {
        matches!(self, Family::Roberta | Family::XlmRoberta | Family::Electra)
    }

    /// Whether the sequence classifier reads BERT's pooler (`tanh(dense([CLS]))` inside the
    /// encoder); the others do the like inside their heads (RoBERTa's `classifier.dense` on
    /// `<s>`, DistilBERT's `pre_classifier`, ELECTRA's `classifier.dense`, DeBERTa's
    /// `pooler.dense`).
    pub fn pools(self) -> bool {
        self == Family::Bert
    }

    /// ModernBERT's `head` (`ModernBertPredictionHead`), which its token-classification,
    /// question-answering and masked-LM heads run on every token before their output layer;
    /// `None` for the other families.
    pub fn prediction_head(self) -> Option<&'static str> {
        (self == Family::ModernBert).then_some("head")
    }

    /// The question-answering head's output layer: `qa_outputs`, ModernBERT's `classifier`.
    pub fn span_head(self) -> &'static str {
        match self {
            Family::ModernBert => "classifier",
            _ => "qa_outputs",
        }
    }

    /// The masked-LM head's parameter names.
    pub fn masked_lm_names(self) -> MaskedLmNames {
        match self {
            Family::ModernBert => MaskedLmNames {
                dense: "head.dense",
                layer_norm: "head.norm",
                bias: "decoder.bias",
                decoder: "decoder",
                norm_first: false,
            },
            Family::Bert | Family::DebertaV2 => MaskedLmNames {
                dense: "cls.predictions.transform.dense",
                layer_norm: "cls.predictions.transform.LayerNorm",
                bias: "cls.predictions.bias",
                decoder: "cls.predictions.decoder",
                norm_first: false,
            },
            Family::Roberta | Family::XlmRoberta => MaskedLmNames {
                dense: "lm_head.dense",
                layer_norm: "lm_head.layer_norm",
                bias: "lm_head.bias",
                decoder: "lm_head.decoder",
                norm_first: false,
            },
            Family::Electra => MaskedLmNames {
                dense: "generator_predictions.dense",
                layer_norm: "generator_predictions.LayerNorm",
                bias: "generator_lm_head.bias",
                decoder: "generator_lm_head",
                norm_first: true,
            },
            Family::DistilBert => MaskedLmNames {
                dense: "vocab_transform",
                layer_norm: "vocab_layer_norm",
                bias: "vocab_projector.bias",
                decoder: "vocab_projector",
                norm_first: false,
            },
        }
    }
}

/// The names of an encoder layer's parts, relative to the layer (`….layer.3.`), and of the
/// layer list relative to the family's prefix. In module order, which is the order
/// `named_parameters` reports.
#[derive(Debug, Clone, Copy)]
pub struct EncoderNames {
    pub layers: &'static str,
    pub query: &'static str,
    pub key: &'static str,
    pub value: &'static str,
    pub attention_output: &'static str,
    pub attention_norm: &'static str,
    pub intermediate: &'static str,
    pub output: &'static str,
    pub output_norm: &'static str,
}

/// A sequence classifier's head on the first token's state: an optional dense layer with its
/// activation, then the output layer; the dropout before each is the config's
/// ([`BertConfig::sequence_dropouts`](super::BertConfig::sequence_dropouts)).
#[derive(Debug, Clone, Copy)]
pub struct SequenceHead {
    pub dense: Option<(&'static str, HeadActivation)>,
    /// ModernBERT's `head.norm` after the activation.
    pub norm: Option<&'static str>,
    pub out: &'static str,
}

/// The activation after a sequence head's dense layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadActivation {
    /// RoBERTa's `classifier.dense` (BERT's pooler too).
    Tanh,
    /// DistilBERT's `pre_classifier`.
    Relu,
    /// ELECTRA's `classifier.dense` (the exact GELU).
    Gelu,
    /// DeBERTa's `ContextPooler`: the config's `pooler_hidden_act`.
    PoolerHiddenAct,
    /// ModernBERT's `head`: the config's `classifier_activation`.
    ClassifierActivation,
}

/// Where a family's masked-LM head keeps its parameters (`decoder` holds no parameter of its
/// own: its weight is the word-embedding table and its bias is `bias`, as transformers ties
/// them; checkpoints may still carry copies under this name).
#[derive(Debug, Clone, Copy)]
pub struct MaskedLmNames {
    pub dense: &'static str,
    pub layer_norm: &'static str,
    pub bias: &'static str,
    pub decoder: &'static str,
    /// Whether the module creates its LayerNorm before its dense layer (ELECTRA's
    /// `generator_predictions`), which is the order `named_parameters` lists them in.
    pub norm_first: bool,
}
