//! ModernBERT's encoder, block by block as in `transformers/models/modernbert/
//! modeling_modernbert.py`, under its names (`model.embeddings.tok_embeddings`,
//! `model.layers.N.attn.Wqkv`, `model.layers.N.mlp.Wi`, `model.final_norm`, …).
//!
//! What differs from BERT's layers (`model/bert.rs`):
//! - pre-norm: each block normalises its input (`attn_norm`, absent in layer 0 where the
//!   embeddings' `norm` just ran; `mlp_norm`) and adds its output to the residual stream; one
//!   `final_norm` at the end;
//! - no position table: queries and keys are rotated by their position (RoPE), with one base
//!   for the full-attention layers and another for the sliding ones;
//! - alternate layers attend only within a window (|query − key| ≤ `local_attention / 2`);
//! - the feed-forward block is a GLU: `Wi` makes two halves, `act(input) · gate`, then `Wo`;
//! - biases only where the config asks (`attention_bias`, `mlp_bias`, `norm_bias`).
//!
//! ModernBERT's own "unpadding" (attention over the real tokens only) is the shape of this
//! crate's packing already: every projection runs on the real tokens, and attention re-pads
//! them to the batch's width with padding keys masked, as for the other families.

use anyhow::Result;
use tch::nn::Path;
use tch::{Device, Kind, Tensor};

use super::config::{BertConfig, HiddenAct};
use super::layers::{activate, attend, drawn, dropout, Draw, LayerNorm, Linear, Queries, DECAY};
use super::modernbert_config::{ModernBertOptions, Pooling};
use super::packing::Packing;

/// `ModernBertModel`: embeddings, the pre-norm layers and the final norm.
#[derive(Debug)]
pub struct ModernBertModel {
    /// `embeddings.tok_embeddings`.
    word: Tensor,
    /// `embeddings.norm`.
    embedding_norm: LayerNorm,
    embedding_dropout: f64,
    layers: Vec<Layer>,
    final_norm: LayerNorm,
    /// RoPE's inverse frequencies `[head_dim / 2]` of the full and the sliding layers.
    global_frequencies: Tensor,
    local_frequencies: Tensor,
    half_window: i64,
    pooling: Pooling,
}

/// `ModernBertEncoderLayer`: `attn_norm` → `attn` (`Wqkv`, RoPE, attention, `Wo`) added to
/// the stream, then `mlp_norm` → `mlp` (`Wi`, GLU, `Wo`) added to it.
#[derive(Debug)]
struct Layer {
    attn_norm: Option<LayerNorm>,
    wqkv: Linear,
    attn_out: Linear,
    mlp_norm: LayerNorm,
    wi: Linear,
    mlp_out: Linear,
    heads: i64,
    sliding: bool,
    act: HiddenAct,
    attention_dropout: f64,
    mlp_dropout: f64,
}

/// What every layer reads of a batch besides its states: the rotation of each real token's
/// position for either kind of layer, `[tokens, 1, head_dim]`, and the key masks.
struct BatchInputs {
    global: (Tensor, Tensor),
    local: (Tensor, Tensor),
    /// `[batch, 1, 1, width]`: the real keys.
    full_mask: Tensor,
    /// `[batch, 1, width, width]`: the real keys within the window of each query.
    window_mask: Tensor,
}

/// RoPE's inverse frequencies for a base `theta`, computed as transformers'
/// `compute_default_rope_parameters` does (float32).
fn inverse_frequencies(theta: f64, head_dim: i64, device: Device) -> Tensor {
    let exponents = Tensor::arange_start_step(0, head_dim, 2, (Kind::Float, device)) / head_dim;
    Tensor::pow_scalar(theta, &exponents).reciprocal()
}

/// `(cos, sin)` of every real token's position, `[tokens, 1, head_dim]` (float32).
fn rotation(positions: &Tensor, frequencies: &Tensor) -> (Tensor, Tensor) {
    let angles = positions.to_kind(Kind::Float).unsqueeze(-1) * frequencies.unsqueeze(0);
    let angles = Tensor::cat(&[&angles, &angles], -1).unsqueeze(1);
    (angles.cos(), angles.sin())
}

/// `apply_rotary_pos_emb` on `[tokens, …, head_dim]` (queries and keys together), in float32
/// as transformers computes it, back in the input's kind. `cos` and `sin` are `[tokens, 1,
/// head_dim]`, broadcast over the middle dimensions.
fn rotate(xs: &Tensor, (cos, sin): &(Tensor, Tensor)) -> Tensor {
    let kind = xs.kind();
    let xs = xs.to_kind(Kind::Float);
    let half = xs.size()[xs.dim() - 1] / 2;
    let rotated = Tensor::cat(
        &[xs.narrow(-1, half, half).neg(), xs.narrow(-1, 0, half)],
        -1,
    );
    (&xs * cos + rotated * sin).to_kind(kind)
}

/// How ModernBERT's `_init_weights` draws a new weight: a truncated normal whose deviation
/// depends on the weight's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The embeddings and the projections out of the stream (`Wqkv`, `Wi`):
    /// `initializer_range`.
    In,
    /// The projections back into the stream (both `Wo`) and the prediction head's `dense`:
    /// `initializer_range / √(2 · num_hidden_layers)`.
    Out,
    /// A task head's `classifier`: `hidden_size^-½`.
    FinalOut,
}

/// How a task head's output layer (`classifier`, `qa_outputs`) draws its weight:
/// ModernBERT's [`Role::FinalOut`], normal(0, `initializer_range`) for the other families.
pub fn output_draw(c: &BertConfig) -> Result<Draw> {
    Ok(match c.family()? {
        super::family::Family::ModernBert => draw(c, &c.modernbert()?, Role::FinalOut),
        _ => Draw::Normal(c.initializer_range),
    })
}

/// The draw of a new ModernBERT weight of `role` (see [`Role`]).
pub fn draw(c: &BertConfig, o: &ModernBertOptions, role: Role) -> Draw {
    let std = match role {
        Role::In => c.initializer_range,
        Role::Out => c.initializer_range / (2.0 * c.num_hidden_layers as f64).sqrt(),
        Role::FinalOut => (c.hidden_size as f64).powf(-0.5),
    };
    Draw::Truncated {
        std,
        cutoff: o.cutoff,
    }
}

impl Layer {
    fn new(p: &Path, i: i64, c: &BertConfig, o: &ModernBertOptions) -> Result<Self> {
        let (h, inner) = (c.hidden_size, c.intermediate_size);
        let (d_in, d_out) = (draw(c, o, Role::In), draw(c, o, Role::Out));
        let norm = |name: &str| LayerNorm::with_bias(p / name, h, c.layer_norm_eps, o.norm_bias);
        Ok(Layer {
            attn_norm: if i == 0 {
                None
            } else {
                Some(norm("attn_norm")?)
            },
            wqkv: Linear::drawn(p / "attn" / "Wqkv", h, 3 * h, d_in, o.attention_bias)?,
            attn_out: Linear::drawn(p / "attn" / "Wo", h, h, d_out, o.attention_bias)?,
            mlp_norm: norm("mlp_norm")?,
            wi: Linear::drawn(p / "mlp" / "Wi", h, 2 * inner, d_in, o.mlp_bias)?,
            mlp_out: Linear::drawn(p / "mlp" / "Wo", inner, h, d_out, o.mlp_bias)?,
            heads: c.num_attention_heads,
            sliding: o.sliding.get(i as usize).copied().unwrap_or(false),
            act: c.hidden_act,
            attention_dropout: c.attention_probs_dropout_prob,
            mlp_dropout: o.mlp_dropout,
        })
    }

    /// `xs`: the real tokens' states `[tokens, hidden]`; with [`Queries::Cls`] only each row's
    /// first token is computed and the result is `[batch, hidden]`.
    fn forward(
        &self,
        xs: &Tensor,
        packing: &Packing,
        queries: Queries,
        inputs: &BatchInputs,
        train: bool,
        output_attentions: bool,
    ) -> (Tensor, Option<Tensor>) {
        let (b, l) = packing.padded_shape();
        let (tokens, h) = (xs.size()[0], xs.size()[1]);
        let d = h / self.heads;
        let normed = match &self.attn_norm {
            Some(norm) => norm.forward(xs),
            None => xs.shallow_clone(),
        };
        let qkv = self.wqkv.forward(&normed).view([tokens, 3, self.heads, d]);
        let (rope, mask) = if self.sliding {
            (&inputs.local, &inputs.window_mask)
        } else {
            (&inputs.global, &inputs.full_mask)
        };
        // Queries and keys rotated in one pass: `[tokens, 2, heads, head_dim]`.
        let (cos, sin) = rope;
        let qk = rotate(&qkv.narrow(1, 0, 2), &(cos.unsqueeze(1), sin.unsqueeze(1)));
        let (q, k) = (qk.select(1, 0), qk.select(1, 1));
        let v = qkv.select(1, 2);
        let padded = |t: &Tensor| {
            packing
                .unpack(&t.flatten(1, -1))
                .view([b, l, self.heads, d])
                .transpose(1, 2)
        };
        let (residual, q, mask) = match queries {
            Queries::AllTokens => (xs.shallow_clone(), padded(&q), mask.shallow_clone()),
            Queries::Cls => {
                let first = packing.first_tokens(&q.flatten(1, -1));
                let mask = if mask.size()[2] > 1 {
                    mask.narrow(2, 0, 1)
                } else {
                    mask.shallow_clone()
                };
                (
                    packing.first_tokens(xs),
                    first.view([b, 1, self.heads, d]).transpose(1, 2),
                    mask,
                )
            }
        };
        let (k, v) = (padded(&k), padded(&v));
        let attention_dropout = if train { self.attention_dropout } else { 0.0 };
        let (context, probs) = attend(
            (&q, &k, &v),
            &mask,
            None,
            None,
            attention_dropout,
            train,
            output_attentions,
        );
        let context = match queries {
            Queries::AllTokens => packing.pack(&context.transpose(1, 2)).flatten(1, -1),
            Queries::Cls => context.reshape([b, h]),
        };
        let attended = dropout(
            &self.attn_out.forward(&context),
            self.attention_dropout,
            train,
        );
        let xs = residual + attended;
        let halves = self.wi.forward(&self.mlp_norm.forward(&xs)).chunk(2, -1);
        let glu = activate(self.act, &halves[0]) * &halves[1];
        let out = self
            .mlp_out
            .forward(&dropout(&glu, self.mlp_dropout, train));
        (xs + out, probs)
    }
}

impl ModernBertModel {
    /// The encoder at `p` (`model`), its config checked by the caller.
    pub(crate) fn new(p: &Path, c: &BertConfig) -> Result<Self> {
        let o = c.modernbert()?;
        let embeddings = p / "embeddings";
        let word = drawn(
            &(&embeddings / "tok_embeddings").set_group(DECAY),
            "weight",
            &[c.vocab_size, c.hidden_size],
            draw(c, &o, Role::In),
        )?;
        let embedding_norm = LayerNorm::with_bias(
            &embeddings / "norm",
            c.hidden_size,
            c.layer_norm_eps,
            o.norm_bias,
        )?;
        let layers = (0..c.num_hidden_layers)
            .map(|i| Layer::new(&(p / "layers" / i), i, c, &o))
            .collect::<Result<_>>()?;
        let final_norm = LayerNorm::with_bias(
            p / "final_norm",
            c.hidden_size,
            c.layer_norm_eps,
            o.norm_bias,
        )?;
        let head_dim = c.hidden_size / c.num_attention_heads;
        Ok(ModernBertModel {
            word,
            embedding_norm,
            embedding_dropout: c.hidden_dropout_prob,
            layers,
            final_norm,
            global_frequencies: inverse_frequencies(o.global_theta, head_dim, p.device()),
            local_frequencies: inverse_frequencies(o.local_theta, head_dim, p.device()),
            half_window: o.half_window,
            pooling: o.pooling,
        })
    }

    /// The sequence classifier's pooling (`classifier_pooling`).
    pub(crate) fn pooling(&self) -> Pooling {
        self.pooling
    }

    /// The token-embedding table, which the masked-LM decoder shares.
    pub(crate) fn word_embeddings(&self) -> &Tensor {
        &self.word
    }

    pub(crate) fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// Embeddings, every layer and the final norm on the real tokens of `packing`; the last
    /// layer computes the states `last_layer` asks for (`[tokens, hidden]` or `[batch,
    /// hidden]`). With `attentions`, each layer's probabilities are pushed there.
    pub(crate) fn encode(
        &self,
        input_ids: &Tensor,
        packing: &Packing,
        train: bool,
        last_layer: Queries,
        mut attentions: Option<&mut Vec<Tensor>>,
    ) -> Tensor {
        let xs = Tensor::embedding(&self.word, &packing.pack(input_ids), -1, false, false);
        let mut xs = dropout(
            &self.embedding_norm.forward(&xs),
            self.embedding_dropout,
            train,
        );
        let positions = packing.positions();
        let width = packing.padded_shape().1;
        let full_mask = packing.key_mask().shallow_clone();
        // A window that spans the batch's width masks nothing more than the padding.
        let window_mask = if self.half_window >= width - 1 {
            full_mask.shallow_clone()
        } else {
            let columns = Tensor::arange(width, (Kind::Int64, positions.device()));
            let within = (columns.unsqueeze(1) - columns.unsqueeze(0))
                .abs()
                .le(self.half_window);
            full_mask.logical_and(&within)
        };
        let inputs = BatchInputs {
            global: rotation(&positions, &self.global_frequencies),
            local: rotation(&positions, &self.local_frequencies),
            window_mask,
            full_mask,
        };
        let last = self.layers.len() - 1;
        let eager = attentions.is_some();
        for (i, layer) in self.layers.iter().enumerate() {
            let queries = if i == last {
                last_layer
            } else {
                Queries::AllTokens
            };
            let (next, probs) = layer.forward(&xs, packing, queries, &inputs, train, eager);
            xs = next;
            if let (Some(all), Some(probs)) = (attentions.as_deref_mut(), probs) {
                all.push(packing.pad_attention(&probs));
            }
        }
        self.final_norm.forward(&xs)
    }
}

/// `ModernBertPredictionHead`: `head.dense` → `classifier_activation` → `head.norm`, which
/// every ModernBERT task head runs before its output layer (the pooled state for sequence
/// classification, every token's for the others).
#[derive(Debug)]
pub struct PredictionHead {
    dense: Linear,
    act: HiddenAct,
    norm: LayerNorm,
}

impl PredictionHead {
    /// The head at `p` (`head`).
    pub(crate) fn new(p: &Path, c: &BertConfig) -> Result<Self> {
        let o = c.modernbert()?;
        Ok(PredictionHead {
            dense: Linear::drawn(
                p / "dense",
                c.hidden_size,
                c.hidden_size,
                draw(c, &o, Role::Out),
                o.classifier_bias,
            )?,
            act: c.classifier_activation()?,
            norm: LayerNorm::with_bias(p / "norm", c.hidden_size, c.layer_norm_eps, o.norm_bias)?,
        })
    }

    /// The family's prediction head under `root` (ModernBERT's `head`), `None` for the
    /// families without one: what the per-token task heads run before their output layer.
    pub(crate) fn of(root: &Path, c: &BertConfig) -> Result<Option<Self>> {
        match c.family()?.prediction_head() {
            Some(name) => Ok(Some(Self::new(&(root / name), c)?)),
            None => Ok(None),
        }
    }

    pub(crate) fn forward(&self, xs: &Tensor) -> Tensor {
        self.norm
            .forward(&activate(self.act, &self.dense.forward(xs)))
    }
}
