//! `BertForMaskedLM`: BERT's pre-training head over every token, for adapting an encoder to a
//! corpus of one's own (continued pre-training) before fine-tuning it with another head.
//!
//! As in transformers: the encoder has no pooler; `cls.predictions.transform` is a dense layer,
//! the config's activation and a LayerNorm; the decoder's weight *is* the word-embedding table
//! (tied: one parameter, whose gradient gathers both uses) and its bias is
//! `cls.predictions.bias`. A checkpoint that ships the head (bert-base-uncased does) loads it;
//! its `cls.predictions.decoder.weight`, a copy of the tied table, is not a separate parameter;
//! one without it (a sentence-embedding model such as MiniLM) starts the head as transformers
//! initialises it, and the load report says so. The saved folder holds what
//! `AutoModelForMaskedLM` loads with nothing missing.

use anyhow::Result;
use tch::nn::{Init, VarStore};
use tch::{Device, Tensor};

use super::bert::BertModel;
use super::checkpoint::{self, BertCheckpoint};
use super::config::{BertConfig, HiddenAct};
use super::layers::{activate, at, var, Draw, LayerNorm, Linear, NO_DECAY};
use super::weights::LoadReport;
use crate::data::tagging::IGNORE_INDEX;
use crate::data::tokenizer::{BertTokenizer, Encoded};

/// A BERT encoder with the masked-language-model head, owning its parameters.
pub struct BertForMaskedLM {
    pub vs: VarStore,
    pub config: BertConfig,
    pub bert: BertModel,
    /// `cls.predictions.transform.dense`.
    transform: Linear,
    /// `cls.predictions.transform.LayerNorm`.
    transform_norm: LayerNorm,
    /// `cls.predictions.bias`, the decoder's bias, one per vocabulary entry.
    bias: Tensor,
    /// ModernBERT's `classifier_activation` (the other families' is fixed or `hidden_act`).
    activation: HiddenAct,
    /// Set by `from_pretrained`: what matched the checkpoint.
    pub load_report: Option<LoadReport>,
}

impl BertCheckpoint for BertForMaskedLM {
    const TASK: &'static str = "ForMaskedLM";

    fn build(config: &BertConfig, device: Device) -> Result<Self> {
        let vs = VarStore::new(device);
        let root = vs.root();
        let family = config.family()?;
        if family == super::Family::DebertaV2
            && config.extra.get("legacy").and_then(|v| v.as_bool()) == Some(false)
        {
            anyhow::bail!(
                "legacy is false: DeBERTa's newer masked-LM head (lm_predictions.lm_head) is \
                 not supported; this crate reads the legacy head (cls.predictions), \
                 transformers' default"
            );
        }
        let bert = BertModel::with_pooler(&root / family.prefix(), config, false)?;
        let names = family.masked_lm_names();
        let at = |dotted: &str| at(&root, dotted);
        // The head maps the encoder's states back to the embeddings' width (ELECTRA's
        // generator head: hidden_size → embedding_size), where the tied decoder reads them.
        let width = config.embedding_size();
        // ModernBERT's head has biases only where its config asks.
        let (dense_bias, norm_bias, draw) = match family {
            super::Family::ModernBert => {
                let o = config.modernbert()?;
                if !o.decoder_bias {
                    anyhow::bail!(
                        "decoder_bias is false: a ModernBERT masked-LM decoder without a bias \
                         is not supported (every published ModernBERT has one)"
                    );
                }
                let draw = super::modernbert::draw(config, &o, super::modernbert::Role::Out);
                (o.classifier_bias, o.norm_bias, draw)
            }
            _ => (true, true, Draw::Normal(config.initializer_range)),
        };
        let dense = || Linear::drawn(at(names.dense), config.hidden_size, width, draw, dense_bias);
        let norm = || {
            LayerNorm::with_bias(
                at(names.layer_norm),
                width,
                config.layer_norm_eps,
                norm_bias,
            )
        };
        let (transform, transform_norm) = if names.norm_first {
            let norm = norm()?;
            (dense()?, norm)
        } else {
            let dense = dense()?;
            (dense, norm()?)
        };
        let (bias_path, bias_name) = names
            .bias
            .rsplit_once('.')
            .expect("a head's bias is under the head");
        let bias = var(
            &at(bias_path).set_group(NO_DECAY),
            bias_name,
            &[config.vocab_size],
            Init::Const(0.),
        )?;
        Ok(BertForMaskedLM {
            vs,
            config: config.clone(),
            bert,
            transform,
            transform_norm,
            bias,
            activation: config.classifier_activation()?,
            load_report: None,
        })
    }

    super::checkpoint::checkpoint_fields!();
}

impl BertForMaskedLM {
    /// A randomly initialised model (see [`checkpoint::create`]).
    pub fn new(config: &BertConfig, device: Device) -> Result<Self> {
        checkpoint::create(config, device)
    }

    /// Loads any BERT checkpoint: one with the pre-training head keeps it, any other (a base
    /// model, a classifier) gets a fresh head, reported as missing.
    pub fn from_pretrained(name_or_dir: &str, device: Device) -> Result<Self> {
        checkpoint::from_pretrained(name_or_dir, None, device)
    }

    /// Writes a folder transformers' `AutoModelForMaskedLM` loads (the tied decoder weight is
    /// not written, as transformers does not write it).
    pub fn save_pretrained(
        &self,
        dir: impl AsRef<std::path::Path>,
        tokenizer: Option<&BertTokenizer>,
    ) -> Result<Vec<std::path::PathBuf>> {
        checkpoint::save_pretrained(self, dir.as_ref(), tokenizer)
    }

    /// Vocabulary logits `[batch, seq, vocab]`; `train` turns dropout on. Padding positions
    /// get the head applied to zero states; the loss never reads them (-100).
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
        )
    }

    /// Logits for an encoded batch, moved to the model's device (row lengths from the host).
    pub fn logits(&self, batch: &Encoded, train: bool) -> Tensor {
        self.head(&self.bert.batch_token_states(batch, self.vs.device(), train))
    }

    /// Logits at the positions the loss reads only (labels other than -100), `[m, vocab]`,
    /// with those labels `[m]` (`labels`: the batch's `[rows, width]`; `labelled`: their flat
    /// positions when the batch knows them, see [`Batch::labelled`](crate::data::Batch::labelled), else found here). The
    /// vocabulary projection is about half of MiniLM's work per token and 85 % of the
    /// positions carry no label, so training and evaluation skip it there; transformers
    /// projects every position and its loss ignores the rest. The loss and its gradient are
    /// the same.
    pub fn masked_logits(
        &self,
        batch: &Encoded,
        labels: &Tensor,
        labelled: Option<&Tensor>,
        train: bool,
    ) -> (Tensor, Tensor) {
        let states = self.bert.batch_token_states(batch, self.vs.device(), train);
        let hidden = states.size()[2];
        let labels = labels.to_device(states.device()).reshape([-1]);
        let picked = match labelled {
            Some(p) => p.to_device(states.device()),
            None => labels.ne(IGNORE_INDEX).nonzero().squeeze_dim(1),
        };
        let chosen = states.reshape([-1, hidden]).index_select(0, &picked);
        (self.head(&chosen), labels.index_select(0, &picked))
    }

    /// `BertLMPredictionHead` (`RobertaLMHead`): transform, then the tied decoder.
    fn head(&self, states: &Tensor) -> Tensor {
        let act = match self.config.family() {
            Ok(family) if family.masked_lm_exact_gelu() => HiddenAct::Gelu,
            Ok(super::Family::ModernBert) => self.activation,
            _ => self.config.hidden_act,
        };
        let transformed = self
            .transform_norm
            .forward(&activate(act, &self.transform.forward(states)));
        transformed.linear(self.bert.word_embeddings(), Some(&self.bias))
    }

    /// Parameters in module order with Hugging Face names (the tied decoder weight once, as
    /// `bert.embeddings.word_embeddings.weight`).
    pub fn named_parameters(&self) -> Vec<(String, Tensor)> {
        checkpoint::named_parameters_of(&self.vs)
    }
}
