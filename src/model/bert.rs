//! BERT's encoder, block by block as in `transformers/models/bert/modeling_bert.py`.
//!
//! Every variable is created under the path Hugging Face uses for it, so the var store's names
//! *are* the checkpoint's names (`bert.encoder.layer.0.attention.self.query.weight`).
//! Biases and LayerNorm parameters go into var-store group [`NO_DECAY`], weights and embedding
//! tables into [`DECAY`]: the two weight-decay groups of the tutorial's appendix, decided by
//! what a parameter is rather than by matching its name later.

use anyhow::Result;
use tch::nn::Path;
use tch::{Kind, Tensor};

use super::config::{BertConfig, HiddenAct};
use super::disentangled::Disentangled;
use super::family::{EncoderNames, Family};
use super::layers::{
    activate, at, attend, dropout, embedding_table, lowest, LayerNorm, Linear, Queries,
};
use super::modernbert::ModernBertModel;
use super::modernbert_config::Pooling;
use super::packing::Packing;

/// `BertEmbeddings` (and `RobertaEmbeddings`, `ElectraEmbeddings`, DistilBERT's `Embeddings`):
/// word + position (+ token type, where the family has them), then LayerNorm and dropout, at
/// the embedding width ([`BertConfig::embedding_size`]); then ELECTRA's `embeddings_project`
/// up to `hidden_size` when the two differ.
#[derive(Debug)]
struct Embeddings {
    word: Tensor,
    /// `None` for DeBERTa-v3 (`position_biased_input` false): positions enter its attention.
    position: Option<Tensor>,
    /// `None` for DistilBERT, which has no token types.
    token_type: Option<Tensor>,
    layer_norm: LayerNorm,
    dropout: f64,
    /// The position id of each row's first token (0 for BERT, `pad_token_id + 1` for
    /// RoBERTa; see [`Family::first_position`](super::Family::first_position)).
    first_position: i64,
    /// ELECTRA's `embeddings_project` (beside `embeddings`, not under it).
    project: Option<Linear>,
}

impl Embeddings {
    /// The embeddings of the base model at `model` (`electra`): `model.embeddings.*`, and
    /// `model.embeddings_project` where the family has it.
    fn new(model: &Path, c: &BertConfig) -> Result<Self> {
        let std = c.initializer_range;
        let width = c.embedding_size();
        let p = model / "embeddings";
        let word = embedding_table(
            &(&p / "word_embeddings"),
            "weight",
            c.vocab_size,
            width,
            std,
        )?;
        // HF zeroes the padding row at initialisation; a loaded checkpoint overwrites it anyway.
        tch::no_grad(|| -> Result<(), tch::TchError> {
            if (0..c.vocab_size).contains(&c.pad_token_id) {
                let _ = word.f_get(c.pad_token_id)?.f_zero_()?;
            }
            Ok(())
        })?;
        Ok(Embeddings {
            word,
            position: if c.has_position_embeddings() {
                Some(embedding_table(
                    &(&p / "position_embeddings"),
                    "weight",
                    c.max_position_embeddings,
                    width,
                    std,
                )?)
            } else {
                None
            },
            token_type: if c.has_token_types() {
                Some(embedding_table(
                    &(&p / "token_type_embeddings"),
                    "weight",
                    c.type_vocab_size,
                    width,
                    std,
                )?)
            } else {
                None
            },
            layer_norm: LayerNorm::new(&p / "LayerNorm", width, c.layer_norm_eps)?,
            dropout: c.hidden_dropout_prob,
            first_position: c.family()?.first_position(c.pad_token_id),
            project: if width != c.hidden_size {
                Some(Linear::new(
                    model / "embeddings_project",
                    width,
                    c.hidden_size,
                    std,
                )?)
            } else {
                None
            },
        })
    }

    /// Embeds the real tokens only: `[tokens, hidden]` in `packing`'s order.
    fn forward(
        &self,
        input_ids: &Tensor,
        token_type_ids: &Tensor,
        packing: &Packing,
        train: bool,
    ) -> Tensor {
        let xs = Tensor::embedding(&self.word, &packing.pack(input_ids), -1, false, false);
        let xs = match &self.position {
            Some(table) => {
                let positions = match self.first_position {
                    0 => packing.positions(),
                    first => packing.positions() + first,
                };
                xs + Tensor::embedding(table, &positions, -1, false, false)
            }
            None => xs,
        };
        let xs = match &self.token_type {
            Some(table) => {
                xs + Tensor::embedding(table, &packing.pack(token_type_ids), -1, false, false)
            }
            None => xs,
        };
        let xs = dropout(&self.layer_norm.forward(&xs), self.dropout, train);
        match &self.project {
            Some(project) => project.forward(&xs),
            None => xs,
        }
    }
}

/// `BertSelfAttention` + `BertSelfOutput` (HF's `attention.self` and `attention.output`;
/// DistilBERT's `attention` and `sa_layer_norm`).
#[derive(Debug)]
struct Attention {
    query: Linear,
    key: Linear,
    value: Linear,
    output: Linear,
    layer_norm: LayerNorm,
    heads: i64,
    attention_dropout: f64,
    hidden_dropout: f64,
    /// DeBERTa's relative-position terms (see [`Disentangled`]).
    relative: Option<Disentangled>,
}

impl Attention {
    /// At layer path `p`, with the family's names `n`.
    fn new(p: &Path, n: &EncoderNames, c: &BertConfig) -> Result<Self> {
        let (h, std) = (c.hidden_size, c.initializer_range);
        Ok(Attention {
            query: Linear::new(at(p, n.query), h, h, std)?,
            key: Linear::new(at(p, n.key), h, h, std)?,
            value: Linear::new(at(p, n.value), h, h, std)?,
            output: Linear::new(at(p, n.attention_output), h, h, std)?,
            layer_norm: LayerNorm::new(at(p, n.attention_norm), h, c.layer_norm_eps)?,
            heads: c.num_attention_heads,
            attention_dropout: c.attention_probs_dropout_prob,
            hidden_dropout: c.hidden_dropout_prob,
            relative: relative_options(c)?,
        })
    }

    /// `xs` holds the real tokens, `[tokens, hidden]` (see [`Packing`]); they are re-padded
    /// only for the attention product itself, at the batch's width, with padding keys
    /// masked. With [`Queries::Cls`] only each sentence's first token asks (every token still
    /// answers as key and value) and the result is `[batch, hidden]`.
    ///
    /// With `output_attentions` the probabilities are computed explicitly (transformers'
    /// "eager" attention) and returned, `[batch, heads, width, width]`; otherwise the fused
    /// kernel runs and no `[width, width]` matrix is kept, so training pays nothing for the
    /// option.
    fn forward(
        &self,
        xs: &Tensor,
        packing: &Packing,
        queries: Queries,
        relative: Option<&RelativeInputs>,
        train: bool,
        output_attentions: bool,
    ) -> (Tensor, Option<Tensor>) {
        let (b, l) = packing.padded_shape();
        let h = xs.size()[1];
        let head_dim = h / self.heads;
        let heads = |t: &Tensor, len: i64| t.view([b, len, self.heads, head_dim]).transpose(1, 2);
        let (residual, q) = match queries {
            Queries::AllTokens => (
                xs.shallow_clone(),
                heads(&packing.unpack(&self.query.forward(xs)), l),
            ),
            Queries::Cls => {
                let cls = packing.first_tokens(xs);
                let q = heads(&self.query.forward(&cls), 1);
                (cls, q)
            }
        };
        let k = heads(&packing.unpack(&self.key.forward(xs)), l);
        let v = heads(&packing.unpack(&self.value.forward(xs)), l);
        let mask = packing.key_mask();
        let attention_dropout = if train { self.attention_dropout } else { 0.0 };
        // DeBERTa: the position terms as an additive bias, masked keys at the lowest value,
        // all scaled by 1/√(d·3) with q·k.
        let (scale, bias) = match (&self.relative, relative) {
            (Some(options), Some(inputs)) => {
                let scale = 1.0 / (head_dim as f64 * options.scale_factor()).sqrt();
                let table = dropout(&inputs.table, self.hidden_dropout, train);
                let rows = table.size()[0];
                let project = |linear: &Linear| {
                    linear
                        .forward(&table)
                        .view([1, rows, self.heads, head_dim])
                        .transpose(1, 2)
                };
                let index = match queries {
                    Queries::AllTokens => inputs.index.shallow_clone(),
                    Queries::Cls => inputs.index.narrow(0, 0, 1),
                };
                let bias = options.bias(&q, &k, &project(&self.query), &project(&self.key), &index)
                    * scale;
                let bias = bias.masked_fill(&mask.logical_not(), lowest(bias.kind()));
                (Some(scale), Some(bias))
            }
            _ => (None, None),
        };
        let (context, probs) = attend(
            (&q, &k, &v),
            mask,
            scale,
            bias.as_ref(),
            attention_dropout,
            train,
            output_attentions,
        );
        let context = match queries {
            Queries::AllTokens => packing.pack(&context.transpose(1, 2)).flatten(1, -1),
            Queries::Cls => context.reshape([b, h]),
        };
        let out = dropout(&self.output.forward(&context), self.hidden_dropout, train);
        (self.layer_norm.forward(&(out + residual)), probs)
    }
}

/// `BertLayer` (DistilBERT's `TransformerBlock`): attention, then the feed-forward block
/// (`intermediate` and `output`; `ffn.lin1`, `ffn.lin2`).
#[derive(Debug)]
struct Layer {
    attention: Attention,
    intermediate: Linear,
    activation: HiddenAct,
    output: Linear,
    layer_norm: LayerNorm,
    dropout: f64,
}

impl Layer {
    fn new(p: Path, n: &EncoderNames, c: &BertConfig) -> Result<Self> {
        let (h, i, std) = (c.hidden_size, c.intermediate_size, c.initializer_range);
        Ok(Layer {
            attention: Attention::new(&p, n, c)?,
            intermediate: Linear::new(at(&p, n.intermediate), h, i, std)?,
            activation: c.hidden_act,
            output: Linear::new(at(&p, n.output), i, h, std)?,
            layer_norm: LayerNorm::new(at(&p, n.output_norm), h, c.layer_norm_eps)?,
            dropout: c.hidden_dropout_prob,
        })
    }

    fn forward(
        &self,
        xs: &Tensor,
        packing: &Packing,
        queries: Queries,
        relative: Option<&RelativeInputs>,
        train: bool,
        output_attentions: bool,
    ) -> (Tensor, Option<Tensor>) {
        let (attended, probs) =
            self.attention
                .forward(xs, packing, queries, relative, train, output_attentions);
        let inner = activate(self.activation, &self.intermediate.forward(&attended));
        let out = dropout(&self.output.forward(&inner), self.dropout, train);
        (self.layer_norm.forward(&(out + attended)), probs)
    }
}

/// `BertModel`: embeddings, the encoder stack and (unless built without it, as transformers'
/// token-classification and question-answering models are) the pooler over `[CLS]`. The
/// encoder of every family (named for the first): ModernBERT's own layers sit behind the
/// same calls.
#[derive(Debug)]
pub struct BertModel {
    stack: Stack,
    pooler: Option<Linear>,
}

/// The layers of a family: BERT's post-norm ones, or ModernBERT's.
#[derive(Debug)]
enum Stack {
    PostNorm {
        embeddings: Embeddings,
        layers: Vec<Layer>,
        /// DeBERTa's `encoder.rel_embeddings` and `encoder.LayerNorm`.
        relative: Option<RelativeTable>,
    },
    Modern(ModernBertModel),
}

/// DeBERTa's relative-position table, shared by every layer (`encoder.rel_embeddings`), and
/// the LayerNorm it goes through first (`encoder.LayerNorm`, with `norm_rel_ebd`).
#[derive(Debug)]
struct RelativeTable {
    table: Tensor,
    norm: Option<LayerNorm>,
    options: Disentangled,
}

/// What every layer's attention reads of a batch's relative positions: the (normed) table and
/// each (query, key) pair's row of it, `[width, width]`.
#[derive(Debug)]
struct RelativeInputs {
    table: Tensor,
    index: Tensor,
}

/// The relative-attention options of a DeBERTa config; `None` for the other families.
fn relative_options(c: &BertConfig) -> Result<Option<Disentangled>> {
    Ok(match c.family()? {
        Family::DebertaV2 => c.deberta()?,
        _ => None,
    })
}

/// What `BertModel` returns (transformers' `BaseModelOutputWithPoolingAndCrossAttentions`).
///
/// Not called `BertOutput`: in transformers and candle that name is the feed-forward block's
/// output layer (`layer.N.output`), a different thing.
#[derive(Debug)]
pub struct BertModelOutput {
    /// Per-token states of the last layer, `[batch, seq, hidden]`; zeros at padding, where
    /// transformers leaves values no one should read (the encoder skips padding
    /// positions; see `model/packing.rs`).
    pub last_hidden_state: Tensor,
    /// `tanh(dense([CLS] state))`, `[batch, hidden]`: what the classifier reads. `None` for
    /// a model built without the pooler (transformers' `add_pooling_layer=False`).
    pub pooler_output: Option<Tensor>,
    /// With [`BertModel::forward_with_attentions`]: one tensor per layer, `[batch, heads,
    /// seq, seq]`, the softmax probabilities (rows: queries, columns: keys; masked keys 0).
    pub attentions: Option<Vec<Tensor>>,
}

impl BertModel {
    pub fn new(p: Path, c: &BertConfig) -> Result<Self> {
        Self::with_pooler(p, c, true)
    }

    /// transformers' `BertModel(config, add_pooling_layer=…)`: the heads that read every
    /// token (token classification, question answering) have no `bert.pooler.*`.
    pub fn with_pooler(p: Path, c: &BertConfig, add_pooling_layer: bool) -> Result<Self> {
        c.validate()?;
        if c.family()? == Family::ModernBert {
            return Ok(BertModel {
                stack: Stack::Modern(ModernBertModel::new(&p, c)?),
                pooler: None,
            });
        }
        // Creation order is module order: it is the order `named_parameters` reports.
        let embeddings = Embeddings::new(&p, c)?;
        let names = c.family()?.encoder_names();
        let encoder = at(&p, names.layers);
        let layers = (0..c.num_hidden_layers)
            .map(|i| Layer::new(&encoder / i, &names, c))
            .collect::<Result<_>>()?;
        let relative = match relative_options(c)? {
            Some(options) => {
                let encoder = &p / "encoder";
                Some(RelativeTable {
                    table: embedding_table(
                        &(&encoder / "rel_embeddings"),
                        "weight",
                        options.table_rows(),
                        c.hidden_size,
                        c.initializer_range,
                    )?,
                    norm: if options.norm {
                        Some(LayerNorm::new(
                            &encoder / "LayerNorm",
                            c.hidden_size,
                            c.layer_norm_eps,
                        )?)
                    } else {
                        None
                    },
                    options,
                })
            }
            None => None,
        };
        Ok(BertModel {
            stack: Stack::PostNorm {
                embeddings,
                layers,
                relative,
            },
            pooler: if add_pooling_layer {
                Some(Linear::new(
                    &p / "pooler" / "dense",
                    c.hidden_size,
                    c.hidden_size,
                    c.initializer_range,
                )?)
            } else {
                None
            },
        })
    }

    /// Runs the encoder. `attention_mask` is 1 for real tokens and 0 for padding.
    /// `attentions` is `None`: the fused attention kernel runs (the training path).
    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        token_type_ids: &Tensor,
        train: bool,
    ) -> BertModelOutput {
        self.run(input_ids, attention_mask, token_type_ids, train, false)
    }

    /// [`forward`](Self::forward) with `output_attentions=True`: also returns every layer's
    /// attention probabilities, computed as transformers' eager attention does.
    pub fn forward_with_attentions(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        token_type_ids: &Tensor,
        train: bool,
    ) -> BertModelOutput {
        self.run(input_ids, attention_mask, token_type_ids, train, true)
    }

    /// `pooler_output` alone, which is all a classifier reads: the same values as
    /// [`forward`](Self::forward)'s, but the last layer computes only the `[CLS]` rows.
    /// Every row must start with a real token, as the tokenizer's rows do (`[CLS]`); for a
    /// row whose first position is padding neither function gives transformers' value.
    pub fn pooled(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        token_type_ids: &Tensor,
        train: bool,
    ) -> Tensor {
        self.pooled_with_lengths(input_ids, attention_mask, token_type_ids, None, train)
    }

    /// [`pooled`](Self::pooled) for a batch whose rows' real-token counts are known on the
    /// host (see [`Encoded::row_lengths`](crate::data::tokenizer::Encoded::row_lengths)): no
    /// value is read back from the device.
    pub(crate) fn pooled_with_lengths(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        token_type_ids: &Tensor,
        row_lengths: Option<&[i64]>,
        train: bool,
    ) -> Tensor {
        let packing = Packing::new(attention_mask, row_lengths);
        if let Stack::Modern(modern) = &self.stack {
            if modern.pooling() == Pooling::Mean {
                // ModernBERT's `classifier_pooling: "mean"`: the mean of the real tokens'
                // last states, as transformers divides the masked sum by the mask's sum.
                let states = packing.unpack(&modern.encode(
                    input_ids,
                    &packing,
                    train,
                    Queries::AllTokens,
                    None,
                ));
                let mask = attention_mask.to_device(states.device());
                let count = mask.sum_dim_intlist(1, true, states.kind());
                let width = states.size()[1];
                let mask = mask
                    .narrow(1, 0, width)
                    .unsqueeze(-1)
                    .to_kind(states.kind());
                return (states * mask).sum_dim_intlist(1, false, None::<Kind>) / count;
            }
        }
        let (_, cls) = self.encode(
            input_ids,
            token_type_ids,
            packing,
            train,
            Queries::Cls,
            None,
        );
        self.pool(&cls)
    }

    /// The last layer's state of every token, `[batch, seq, hidden]` (zeros at padding), for a
    /// batch whose row lengths may be known on the host: what a per-token head reads. The
    /// pooler is not run.
    pub(crate) fn token_states(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        token_type_ids: &Tensor,
        row_lengths: Option<&[i64]>,
        train: bool,
    ) -> Tensor {
        let (packing, xs) = self.encode(
            input_ids,
            token_type_ids,
            Packing::new(attention_mask, row_lengths),
            train,
            Queries::AllTokens,
            None,
        );
        packing.unpack_to_input_width(&xs)
    }

    /// [`token_states`](Self::token_states) of an encoded batch, its tensors moved to `device`
    /// (the model's) and its rows' lengths taken from the host: what every per-token head's
    /// `logits` starts from.
    pub(crate) fn batch_token_states(
        &self,
        batch: &crate::data::tokenizer::Encoded,
        device: tch::Device,
        train: bool,
    ) -> Tensor {
        self.token_states(
            &batch.input_ids.to_device(device),
            &batch.attention_mask.to_device(device),
            &batch.token_type_ids.to_device(device),
            batch.row_lengths(),
            train,
        )
    }

    /// `tanh(dense(cls))` (the `[CLS]` state itself for a model without a pooler).
    fn pool(&self, cls: &Tensor) -> Tensor {
        match &self.pooler {
            Some(pooler) => pooler.forward(cls).tanh(),
            None => cls.shallow_clone(),
        }
    }

    /// The word-embedding table `[vocab, embedding_size]`, which the masked-LM head's decoder shares
    /// (transformers' tied `cls.predictions.decoder.weight`).
    pub(crate) fn word_embeddings(&self) -> &Tensor {
        match &self.stack {
            Stack::PostNorm { embeddings, .. } => &embeddings.word,
            Stack::Modern(modern) => modern.word_embeddings(),
        }
    }

    /// Number of encoder layers (`num_hidden_layers`).
    pub fn num_layers(&self) -> usize {
        match &self.stack {
            Stack::PostNorm { layers, .. } => layers.len(),
            Stack::Modern(modern) => modern.num_layers(),
        }
    }

    fn run(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        token_type_ids: &Tensor,
        train: bool,
        output_attentions: bool,
    ) -> BertModelOutput {
        let mut attentions = output_attentions.then(Vec::new);
        let (packing, xs) = self.encode(
            input_ids,
            token_type_ids,
            Packing::new(attention_mask, None),
            train,
            Queries::AllTokens,
            attentions.as_mut(),
        );
        let xs = packing.unpack_to_input_width(&xs);
        let pooler_output = self
            .pooler
            .as_ref()
            .map(|pooler| pooler.forward(&xs.select(1, 0)).tanh());
        BertModelOutput {
            last_hidden_state: xs,
            pooler_output,
            attentions,
        }
    }

    /// Embeddings and every layer, on the real tokens only; the last layer computes the
    /// states `last_layer` asks for (`[tokens, hidden]` packed, or `[batch, hidden]`).
    /// With `attentions`, each layer's probabilities are pushed there (eager attention).
    fn encode(
        &self,
        input_ids: &Tensor,
        token_type_ids: &Tensor,
        packing: Packing,
        train: bool,
        last_layer: Queries,
        mut attentions: Option<&mut Vec<Tensor>>,
    ) -> (Packing, Tensor) {
        let (embeddings, layers, relative) = match &self.stack {
            Stack::PostNorm {
                embeddings,
                layers,
                relative,
            } => (embeddings, layers, relative),
            Stack::Modern(modern) => {
                let xs = modern.encode(input_ids, &packing, train, last_layer, attentions);
                return (packing, xs);
            }
        };
        let mut xs = embeddings.forward(input_ids, token_type_ids, &packing, train);
        let relative = relative.as_ref().map(|r| RelativeInputs {
            table: match &r.norm {
                Some(norm) => norm.forward(&r.table),
                None => r.table.shallow_clone(),
            },
            index: r
                .options
                .positions(packing.padded_shape().1, r.table.device()),
        });
        // `BertModel::new` validated the config: there is at least one layer.
        let last = layers.len() - 1;
        let eager = attentions.is_some();
        for (i, layer) in layers.iter().enumerate() {
            let queries = if i == last {
                last_layer
            } else {
                Queries::AllTokens
            };
            let (next, probs) =
                layer.forward(&xs, &packing, queries, relative.as_ref(), train, eager);
            xs = next;
            if let (Some(all), Some(probs)) = (attentions.as_deref_mut(), probs) {
                all.push(packing.pad_attention(&probs));
            }
        }
        (packing, xs)
    }
}
