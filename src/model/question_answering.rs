//! `BertForQuestionAnswering`: every token's last-layer state → `qa_outputs` (two outputs), the
//! start and end logits of the answer span. As in transformers, no pooler and no dropout before
//! the head (DistilBERT's has one: `qa_dropout`).
//!
//! One difference, on purpose: padding positions get a start and end logit of -10000, so no
//! span can start or end there and the loss's softmax runs over real tokens only.
//! transformers computes logits for padding too (from states no one should read), so on a
//! batch with padding its loss differs from ours; on rows without padding, and at every real
//! position, the two agree (`tests/heads.rs`).

use anyhow::Result;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use super::bert::BertModel;
use super::checkpoint::{self, BertCheckpoint};
use super::config::BertConfig;
use super::layers::{dropout, Linear};
use super::modernbert::{output_draw, PredictionHead};
use super::weights::LoadReport;
use crate::data::tokenizer::{BertTokenizer, Encoded};

/// The logit a padding position gets (as the extended attention masks of BERT's day did).
pub const PADDING_LOGIT: f64 = -10_000.0;

/// A BERT encoder with a span head, owning its parameters.
pub struct BertForQuestionAnswering {
    pub vs: VarStore,
    pub config: BertConfig,
    pub bert: BertModel,
    /// ModernBERT's `head` (dense, activation, norm) before its dropout and output layer.
    pub head: Option<PredictionHead>,
    /// `qa_outputs` (ModernBERT's `classifier`): the start and end logits.
    pub qa_outputs: Linear,
    /// Set by `from_pretrained`: what matched the checkpoint.
    pub load_report: Option<LoadReport>,
}

impl BertCheckpoint for BertForQuestionAnswering {
    const TASK: &'static str = "ForQuestionAnswering";

    fn build(config: &BertConfig, device: Device) -> Result<Self> {
        let vs = VarStore::new(device);
        let root = vs.root();
        let family = config.family()?;
        let bert = BertModel::with_pooler(&root / family.prefix(), config, false)?;
        let head = PredictionHead::of(&root, config)?;
        let qa_outputs = Linear::drawn(
            &root / family.span_head(),
            config.hidden_size,
            2,
            output_draw(config)?,
            true,
        )?;
        Ok(BertForQuestionAnswering {
            vs,
            config: config.clone(),
            bert,
            head,
            qa_outputs,
            load_report: None,
        })
    }

    super::checkpoint::checkpoint_fields!();
}

impl BertForQuestionAnswering {
    /// A randomly initialised model (see [`checkpoint::create`]).
    pub fn new(config: &BertConfig, device: Device) -> Result<Self> {
        let mut config = config.clone();
        config.set_num_labels(2);
        checkpoint::create(&config, device)
    }

    /// Loads any BERT checkpoint (a base model, a classifier, a question-answering model);
    /// the span head always has two outputs (start, end), as transformers' `num_labels=2`.
    pub fn from_pretrained(name_or_dir: &str, device: Device) -> Result<Self> {
        checkpoint::from_pretrained(name_or_dir, Some(2), device)
    }

    /// Writes a folder transformers' `AutoModelForQuestionAnswering` loads.
    pub fn save_pretrained(
        &self,
        dir: impl AsRef<std::path::Path>,
        tokenizer: Option<&BertTokenizer>,
    ) -> Result<Vec<std::path::PathBuf>> {
        checkpoint::save_pretrained(self, dir.as_ref(), tokenizer)
    }

    /// Start and end logits, each `[batch, seq]` (float32; padding at [`PADDING_LOGIT`]).
    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        token_type_ids: &Tensor,
        train: bool,
    ) -> (Tensor, Tensor) {
        let states = self
            .bert
            .token_states(input_ids, attention_mask, token_type_ids, None, train);
        self.head(&states, attention_mask, train)
    }

    /// [`forward`](Self::forward) for an encoded batch, moved to the model's device.
    pub fn logits(&self, batch: &Encoded, train: bool) -> (Tensor, Tensor) {
        let device = self.vs.device();
        let states = self.bert.batch_token_states(batch, device, train);
        self.head(&states, &batch.attention_mask.to_device(device), train)
    }

    fn head(&self, states: &Tensor, attention_mask: &Tensor, train: bool) -> (Tensor, Tensor) {
        let states = match &self.head {
            Some(head) => head.forward(states),
            None => states.shallow_clone(),
        };
        let p = self.config.span_dropout();
        let states = if p > 0.0 {
            dropout(&states, p, train)
        } else {
            states.shallow_clone()
        };
        let logits = self.qa_outputs.forward(&states).to_kind(Kind::Float);
        let padding = attention_mask.eq(0).unsqueeze(-1);
        let logits = logits.masked_fill(&padding, PADDING_LOGIT);
        let parts = logits.split(1, -1);
        (parts[0].squeeze_dim(-1), parts[1].squeeze_dim(-1))
    }

    /// Parameters in module order with Hugging Face names.
    pub fn named_parameters(&self) -> Vec<(String, Tensor)> {
        checkpoint::named_parameters_of(&self.vs)
    }
}
