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

use super::bert::BertModel;
use super::checkpoint::BertCheckpoint;
use super::config::{BertConfig, HiddenAct};
use super::family::{Family, HeadActivation};
use super::layers::{activate, at, dropout, Draw, LayerNorm, Linear};
use super::modernbert::{self, output_draw, Role};
use super::weights::LoadReport;
use crate::data::tokenizer::Encoded;

/// A BERT encoder with a classification head, owning its parameters.
pub struct BertForSequenceClassification {
    pub vs: VarStore,
    pub config: BertConfig,
    pub bert: BertModel,
    /// RoBERTa's `classifier.dense` (tanh after it) on `<s>`, DistilBERT's `pre_classifier`
    /// (ReLU), ELECTRA's `classifier.dense` (GELU), DeBERTa's `pooler.dense`
    /// (`pooler_hidden_act`); `None` for BERT, whose pooler does the same inside the encoder.
    pub dense: Option<(Linear, Activation)>,
    /// ModernBERT's `head.norm`, after the dense layer's activation.
    pub norm: Option<LayerNorm>,
    /// `classifier` (BERT, DistilBERT, DeBERTa) or `classifier.out_proj` (RoBERTa, ELECTRA):
    /// the logits.
    pub classifier: Linear,
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
        let (before_dense, before_out) = self.config.sequence_dropouts();
        let features = match &self.dense {
            Some((dense, activation)) => {
                let out = dense.forward(&dropout(&pooled, before_dense, train));
                match activation {
                    Activation::Tanh => out.tanh(),
                    Activation::Relu => out.relu(),
                    Activation::Hidden(act) => activate(*act, &out),
                }
            }
            None => pooled,
        };
        let features = match &self.norm {
            Some(norm) => norm.forward(&features),
            None => features,
        };
        self.classifier
            .forward(&dropout(&features, before_out, train))
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

/// The activation after the head's dense layer, resolved from the family and the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Tanh,
    Relu,
    /// One of `hidden_act`'s functions (ELECTRA's GELU, DeBERTa's `pooler_hidden_act`).
    Hidden(HiddenAct),
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
        // ModernBERT's head has a bias and its norm one only where the config asks.
        let (head_bias, norm_bias, dense_draw) = match family {
            Family::ModernBert => {
                let o = config.modernbert()?;
                let dense_draw = modernbert::draw(config, &o, Role::Out);
                (o.classifier_bias, o.norm_bias, dense_draw)
            }
            _ => (true, true, Draw::Normal(std)),
        };
        let dense = match shape.dense {
            Some((name, activation)) => {
                let activation = match activation {
                    HeadActivation::Tanh => Activation::Tanh,
                    HeadActivation::Relu => Activation::Relu,
                    HeadActivation::Gelu => Activation::Hidden(HiddenAct::Gelu),
                    HeadActivation::PoolerHiddenAct => {
                        Activation::Hidden(config.pooler_hidden_act()?)
                    }
                    HeadActivation::ClassifierActivation => {
                        Activation::Hidden(config.classifier_activation()?)
                    }
                };
                Some((
                    Linear::drawn(at(&root, name), h, h, dense_draw, head_bias)?,
                    activation,
                ))
            }
            None => None,
        };
        let norm = match shape.norm {
            Some(name) => Some(LayerNorm::with_bias(
                at(&root, name),
                h,
                config.layer_norm_eps,
                norm_bias,
            )?),
            None => None,
        };
        let classifier =
            Linear::drawn(at(&root, shape.out), h, labels, output_draw(config)?, true)?;
        Ok(BertForSequenceClassification {
            vs,
            config: config.clone(),
            bert,
            dense,
            norm,
            classifier,
            load_report: None,
        })
    }

    super::checkpoint::checkpoint_fields!();
}
