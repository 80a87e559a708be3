//! `BertForSequenceClassification`: BERT's pooled `[CLS]` state → dropout → linear head; for
//! RoBERTa and XLM-R (`RobertaForSequenceClassification`) the same shape inside the head:
//! `<s>` → dropout → `classifier.dense` → tanh → dropout → `classifier.out_proj`; for
//! DistilBERT `[CLS]` → `pre_classifier` → ReLU → dropout (`seq_classif_dropout`) →
//! `classifier` (see [`Family::sequence_head`](super::Family::sequence_head)).

//!
//! The rest of the type lives beside it: checkpoint loading and saving in
//! [`pretrained`](super::pretrained), parameter introspection in [`params`](super::params).

use anyhow::{bail, Result};
use tch::nn::VarStore;
use tch::{Device, Tensor};

use super::bert::{at, BertModel, Linear};
use super::checkpoint::BertCheckpoint;
use super::config::BertConfig;
use super::family::{HeadActivation, SequenceHead};
use super::weights::LoadReport;
use crate::data::tokenizer::Encoded;

/// A BERT encoder with a classification head, owning its parameters.
pub struct BertForSequenceClassification {
    pub vs: VarStore,
    pub config: BertConfig,
    pub bert: BertModel,
    /// RoBERTa's `classifier.dense` (tanh after it) on `<s>`, DistilBERT's `pre_classifier`
    /// (ReLU); `None` for BERT, whose pooler does the same inside the encoder.
    pub dense: Option<Linear>,
    /// `classifier` (BERT, DistilBERT) or `classifier.out_proj` (RoBERTa): the logits.
    pub classifier: Linear,
    /// The family's head: its activation and where dropout goes.
    shape: SequenceHead,
    /// Set by `from_pretrained`: what matched the checkpoint.
    pub load_report: Option<LoadReport>,
}

impl BertForSequenceClassification {
    /// A randomly initialised model (HF's init: normal(0, `initializer_range`)).
    ///
    /// Weights are always drawn from the CPU generator and then copied to `device`, so a GPU
    /// run starts from the same weights (and the same fresh head) as a CPU or PyTorch run of
    /// the same seed.
    ///
    /// A config whose parameters would not fit in the memory available is refused first,
    /// naming the part and the fields that make it large; an allocation libtorch still
    /// refuses is an error naming the tensor, never a panic.
    pub fn new(config: &BertConfig, device: Device) -> Result<Self> {
        super::checkpoint::create(config, device)
    }

    /// Classification logits `[batch, num_labels]`; `train` turns dropout on.
    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        token_type_ids: &Tensor,
        train: bool,
    ) -> Tensor {
        let pooled = self
            .bert
            .pooled(input_ids, attention_mask, token_type_ids, train);
        self.head(pooled, train)
    }

    /// The head on the pooled `[CLS]` (BERT) or the first token's state (the others).
    fn head(&self, pooled: Tensor, train: bool) -> Tensor {
        let p = self.config.sequence_dropout();
        let features = match (&self.dense, self.shape.dense) {
            (Some(dense), Some((_, activation))) => {
                let input = if self.shape.dropout_before_dense {
                    pooled.dropout(p, train)
                } else {
                    pooled
                };
                let out = dense.forward(&input);
                match activation {
                    HeadActivation::Tanh => out.tanh(),
                    HeadActivation::Relu => out.relu(),
                    HeadActivation::Gelu => out.gelu("none"),
                }
            }
            _ => pooled,
        };
        self.classifier.forward(&features.dropout(p, train))
    }

    /// Logits for an encoded batch, moved to the model's device. A batch padded by this
    /// crate carries its row lengths, so nothing is read back from the device on the way.
    pub fn logits(&self, batch: &Encoded, train: bool) -> Tensor {
        let device = self.vs.device();
        let pooled = self.bert.pooled_with_lengths(
            &batch.input_ids.to_device(device),
            &batch.attention_mask.to_device(device),
            &batch.token_type_ids.to_device(device),
            batch.row_lengths(),
            train,
        );
        self.head(pooled, train)
    }

    /// Every layer's attention probabilities for an encoded batch (transformers'
    /// `output_attentions=True`): one `[batch, heads, seq, seq]` tensor per layer, rows are
    /// queries and columns keys, padding keys get 0. Runs in eval mode (no dropout) without
    /// gradients; the tensors stay on the model's device.
    pub fn attentions(&self, inputs: &Encoded) -> Result<Vec<Tensor>> {
        let dims = inputs.input_ids.size();
        let [batch, seq] = dims[..] else {
            bail!("input_ids must be [batch, seq]; got shape {dims:?}");
        };
        for (name, t) in [
            ("attention_mask", &inputs.attention_mask),
            ("token_type_ids", &inputs.token_type_ids),
        ] {
            if t.size() != dims {
                bail!(
                    "{name} has shape {:?}, input_ids {dims:?}; they must match",
                    t.size()
                );
            }
        }
        if batch == 0 || seq == 0 {
            bail!("the batch is empty (input_ids has shape {dims:?})");
        }
        if seq > self.config.max_tokens() {
            bail!(
                "the batch is {seq} tokens long; this model reads at most \
                 {} tokens (max_position_embeddings in its config.json)",
                self.config.max_tokens()
            );
        }
        let inputs = inputs.to_device(self.vs.device());
        let out = tch::no_grad(|| {
            self.bert.forward_with_attentions(
                &inputs.input_ids,
                &inputs.attention_mask,
                &inputs.token_type_ids,
                false,
            )
        });
        Ok(out
            .attentions
            .expect("forward_with_attentions returns attentions"))
    }
}

impl BertCheckpoint for BertForSequenceClassification {
    const TASK: &'static str = "ForSequenceClassification";

    fn build(config: &BertConfig, device: Device) -> Result<Self> {
        let vs = VarStore::new(device);
        let root = vs.root();
        let family = config.family()?;
        let bert = BertModel::with_pooler(&root / family.prefix(), config, family.pools())?;
        let (h, std) = (config.hidden_size, config.initializer_range);
        let labels = config.num_labels() as i64;
        let shape = family.sequence_head();
        let dense = match shape.dense {
            Some((name, _)) => Some(Linear::new(at(&root, name), h, h, std)?),
            None => None,
        };
        let classifier = Linear::new(at(&root, shape.out), h, labels, std)?;
        Ok(BertForSequenceClassification {
            vs,
            config: config.clone(),
            bert,
            dense,
            classifier,
            shape,
            load_report: None,
        })
    }

    super::checkpoint::checkpoint_fields!();
}
