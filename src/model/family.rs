//! The encoder families this crate runs, chosen by `model_type` in `config.json`, and what
//! differs between them where the rest of the crate builds, loads and saves a model.
//!
//! | family | `model_type` | parameters under | positions | sequence head | masked-LM head |
//! |---|---|---|---|---|---|
//! | BERT | `bert` | `bert.` | from 0 | `bert.pooler.dense` → tanh → `classifier` | `cls.predictions.*` |
//! | RoBERTa | `roberta` | `roberta.` | from `pad_token_id + 1` | `<s>` → `classifier.dense` → tanh → `classifier.out_proj` | `lm_head.*` |
//! | XLM-RoBERTa | `xlm-roberta` | `roberta.` | as RoBERTa | as RoBERTa | as RoBERTa |
//!
//! RoBERTa's encoder layers are BERT's (`RobertaLayer` is `BertLayer` under another name),
//! so one encoder serves all three; the families differ in the embeddings' positions, the
//! names, and the heads.

use anyhow::{bail, Result};

/// An encoder family (see the module's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Bert,
    Roberta,
    XlmRoberta,
}

impl Family {
    /// Every family, in the order error messages list them.
    pub const ALL: [Family; 3] = [Family::Bert, Family::Roberta, Family::XlmRoberta];

    /// `model_type` as `config.json` writes it.
    pub fn model_type(self) -> &'static str {
        match self {
            Family::Bert => "bert",
            Family::Roberta => "roberta",
            Family::XlmRoberta => "xlm-roberta",
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
        }
    }

    /// The start of the family's class names (`RobertaForTokenClassification`).
    pub fn class_prefix(self) -> &'static str {
        match self {
            Family::Bert => "Bert",
            Family::Roberta => "Roberta",
            Family::XlmRoberta => "XLMRoberta",
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
            Family::Bert => 0,
            Family::Roberta | Family::XlmRoberta => pad_token_id + 1,
        }
    }

    /// Whether the sequence classifier reads BERT's pooler (`tanh(dense([CLS]))` inside the
    /// encoder); RoBERTa's does the same inside its head, `classifier.dense`, on `<s>`.
    pub fn pools(self) -> bool {
        self == Family::Bert
    }

    /// The masked-LM head's parameter names.
    pub fn masked_lm_names(self) -> MaskedLmNames {
        match self {
            Family::Bert => MaskedLmNames {
                dense: "cls.predictions.transform.dense",
                layer_norm: "cls.predictions.transform.LayerNorm",
                bias: "cls.predictions.bias",
                decoder: "cls.predictions.decoder",
            },
            Family::Roberta | Family::XlmRoberta => MaskedLmNames {
                dense: "lm_head.dense",
                layer_norm: "lm_head.layer_norm",
                bias: "lm_head.bias",
                decoder: "lm_head.decoder",
            },
        }
    }
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
}
