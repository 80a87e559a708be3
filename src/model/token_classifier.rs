//! `BertForTokenClassification`: every token's last-layer state → dropout → linear head, one
//! label per token (named entities, slot filling). As in transformers, the encoder has no
//! pooler, so a sequence-classification checkpoint's `bert.pooler.*` is reported unused and a
//! base checkpoint's missing `classifier.*` is initialised fresh.

use anyhow::Result;
use tch::nn::VarStore;
use tch::{Device, Tensor};

use super::bert::BertModel;
use super::checkpoint::{self, BertCheckpoint};
use super::config::BertConfig;
use super::layers::{dropout, Linear};
use super::modernbert::{output_draw, PredictionHead};
use super::weights::LoadReport;
use crate::data::tokenizer::{BertTokenizer, Encoded};

/// A BERT encoder with a per-token classification head, owning its parameters.
pub struct BertForTokenClassification {
    pub vs: VarStore,
    pub config: BertConfig,
    pub bert: BertModel,
    /// ModernBERT's `head` (dense, activation, norm) before the dropout and `classifier`.
    pub head: Option<PredictionHead>,
    pub classifier: Linear,
    /// Set by `from_pretrained`: what matched the checkpoint.
    pub load_report: Option<LoadReport>,
}

impl BertCheckpoint for BertForTokenClassification {
    const TASK: &'static str = "ForTokenClassification";

    fn build(config: &BertConfig, device: Device) -> Result<Self> {
        let vs = VarStore::new(device);
        let root = vs.root();
        let family = config.family()?;
        let bert = BertModel::with_pooler(&root / family.prefix(), config, false)?;
        let head = PredictionHead::of(&root, config)?;
        let classifier = Linear::drawn(
            &root / "classifier",
            config.hidden_size,
            config.num_labels() as i64,
            output_draw(config)?,
            true,
        )?;
        Ok(BertForTokenClassification {
            vs,
            config: config.clone(),
            bert,
            head,
            classifier,
            load_report: None,
        })
    }

    super::checkpoint::checkpoint_fields!();
}

impl BertForTokenClassification {
    /// A randomly initialised model (see [`checkpoint::create`]).
    pub fn new(config: &BertConfig, device: Device) -> Result<Self> {
        checkpoint::create(config, device)
    }

    /// Loads any BERT checkpoint (a base model, a sequence classifier, a token classifier);
    /// `num_labels` `Some(n)` asks for `n` tags (a head of another size is replaced, and said).
    pub fn from_pretrained(
        name_or_dir: &str,
        num_labels: impl Into<Option<usize>>,
        device: Device,
    ) -> Result<Self> {
        checkpoint::from_pretrained(name_or_dir, num_labels.into(), device)
    }

    /// Writes a folder transformers' `AutoModelForTokenClassification` loads.
    pub fn save_pretrained(
        &self,
        dir: impl AsRef<std::path::Path>,
        tokenizer: Option<&BertTokenizer>,
    ) -> Result<Vec<std::path::PathBuf>> {
        checkpoint::save_pretrained(self, dir.as_ref(), tokenizer)
    }

    /// Tag logits `[batch, seq, num_labels]`; `train` turns dropout on. Padding positions get
    /// the head's bias alone (their states are zeros); the loss never reads them (-100).
    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        token_type_ids: &Tensor,
        train: bool,
    ) -> Tensor {
        self.head(
            &self
                .bert
                .token_states(input_ids, attention_mask, token_type_ids, None, train),
            train,
        )
    }

    /// Logits for an encoded batch, moved to the model's device (row lengths from the host).
    pub fn logits(&self, batch: &Encoded, train: bool) -> Tensor {
        let states = self.bert.batch_token_states(batch, self.vs.device(), train);
        self.head(&states, train)
    }

    fn head(&self, states: &Tensor, train: bool) -> Tensor {
        let states = match &self.head {
            Some(head) => head.forward(states),
            None => states.shallow_clone(),
        };
        self.classifier.forward(&dropout(
            &states,
            self.config.classifier_dropout_prob(),
            train,
        ))
    }

    /// Parameters in module order with Hugging Face names.
    pub fn named_parameters(&self) -> Vec<(String, Tensor)> {
        checkpoint::named_parameters_of(&self.vs)
    }
}
