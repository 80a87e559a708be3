//! BERT's encoder, block by block as in `transformers/models/bert/modeling_bert.py`.
//!
//! Every variable is created under the path Hugging Face uses for it, so the var store's names
//! *are* the checkpoint's names (`bert.encoder.layer.0.attention.self.query.weight`).
//! Biases and LayerNorm parameters go into var-store group [`NO_DECAY`], weights and embedding
//! tables into [`DECAY`]: the two weight-decay groups of the tutorial's appendix, decided by
//! what a parameter is rather than by matching its name later.

use anyhow::{bail, Result};
use tch::nn::{Init, Path};
use tch::{Kind, Tensor};

use super::config::BertConfig;

/// Var-store group of parameters that take weight decay.
pub const DECAY: usize = 0;
/// Var-store group of biases and LayerNorm parameters, which never take weight decay.
pub const NO_DECAY: usize = 1;

/// The feed-forward activation named by `hidden_act`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `gelu`: the exact, erf-based GELU (BERT's default).
    Gelu,
    /// `gelu_new` / `gelu_pytorch_tanh`: the tanh approximation.
    GeluTanh,
    Relu,
}

impl Activation {
    pub fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "gelu" => Activation::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluTanh,
            "relu" => Activation::Relu,
            other => bail!("hidden_act {other:?} is not supported (gelu, gelu_new, relu)"),
        })
    }

    fn apply(self, xs: &Tensor) -> Tensor {
        match self {
            Activation::Gelu => xs.gelu("none"),
            Activation::GeluTanh => xs.gelu("tanh"),
            Activation::Relu => xs.relu(),
        }
    }
}

/// `nn.Linear` with HF's initialisation (normal(0, initializer_range), zero bias).
#[derive(Debug)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Tensor,
}

impl Linear {
    pub fn new(p: Path, in_dim: i64, out_dim: i64, std: f64) -> Self {
        let weight = p.set_group(DECAY).var(
            "weight",
            &[out_dim, in_dim],
            Init::Randn {
                mean: 0.,
                stdev: std,
            },
        );
        let bias = p
            .set_group(NO_DECAY)
            .var("bias", &[out_dim], Init::Const(0.));
        Linear { weight, bias }
    }

    pub fn forward(&self, xs: &Tensor) -> Tensor {
        xs.linear(&self.weight, Some(&self.bias))
    }
}

/// `nn.LayerNorm` over the last dimension.
#[derive(Debug)]
struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
    dim: i64,
}

impl LayerNorm {
    fn new(p: Path, dim: i64, eps: f64) -> Self {
        let p = p.set_group(NO_DECAY);
        LayerNorm {
            weight: p.var("weight", &[dim], Init::Const(1.)),
            bias: p.var("bias", &[dim], Init::Const(0.)),
            eps,
            dim,
        }
    }

    fn forward(&self, xs: &Tensor) -> Tensor {
        xs.layer_norm(
            [self.dim],
            Some(&self.weight),
            Some(&self.bias),
            self.eps,
            true,
        )
    }
}

fn embedding_table(p: &Path, name: &str, rows: i64, dim: i64, std: f64) -> Tensor {
    p.set_group(DECAY).var(
        name,
        &[rows, dim],
        Init::Randn {
            mean: 0.,
            stdev: std,
        },
    )
}

/// `BertEmbeddings`: word + position + token type, then LayerNorm and dropout.
#[derive(Debug)]
struct Embeddings {
    word: Tensor,
    position: Tensor,
    token_type: Tensor,
    layer_norm: LayerNorm,
    dropout: f64,
}

impl Embeddings {
    fn new(p: Path, c: &BertConfig) -> Self {
        let std = c.initializer_range;
        let word = embedding_table(
            &(&p / "word_embeddings"),
            "weight",
            c.vocab_size,
            c.hidden_size,
            std,
        );
        // HF zeroes the padding row at initialisation; a loaded checkpoint overwrites it anyway.
        tch::no_grad(|| {
            if (0..c.vocab_size).contains(&c.pad_token_id) {
                let _ = word.get(c.pad_token_id).zero_();
            }
        });
        Embeddings {
            word,
            position: embedding_table(
                &(&p / "position_embeddings"),
                "weight",
                c.max_position_embeddings,
                c.hidden_size,
                std,
            ),
            token_type: embedding_table(
                &(&p / "token_type_embeddings"),
                "weight",
                c.type_vocab_size,
                c.hidden_size,
                std,
            ),
            layer_norm: LayerNorm::new(&p / "LayerNorm", c.hidden_size, c.layer_norm_eps),
            dropout: c.hidden_dropout_prob,
        }
    }

    fn forward(&self, input_ids: &Tensor, token_type_ids: &Tensor, train: bool) -> Tensor {
        let seq_len = input_ids.size()[1];
        let positions = Tensor::arange(seq_len, (Kind::Int64, input_ids.device()));
        let xs = Tensor::embedding(&self.word, input_ids, -1, false, false)
            + Tensor::embedding(&self.position, &positions, -1, false, false).unsqueeze(0)
            + Tensor::embedding(&self.token_type, token_type_ids, -1, false, false);
        self.layer_norm.forward(&xs).dropout(self.dropout, train)
    }
}

/// `BertSelfAttention` + `BertSelfOutput` (HF's `attention.self` and `attention.output`).
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
}

impl Attention {
    fn new(p: Path, c: &BertConfig) -> Self {
        let (h, std) = (c.hidden_size, c.initializer_range);
        let s = &p / "self";
        let o = &p / "output";
        Attention {
            query: Linear::new(&s / "query", h, h, std),
            key: Linear::new(&s / "key", h, h, std),
            value: Linear::new(&s / "value", h, h, std),
            output: Linear::new(&o / "dense", h, h, std),
            layer_norm: LayerNorm::new(&o / "LayerNorm", h, c.layer_norm_eps),
            heads: c.num_attention_heads,
            attention_dropout: c.attention_probs_dropout_prob,
            hidden_dropout: c.hidden_dropout_prob,
        }
    }

    /// `mask` is boolean `[batch, 1, 1, seq]`, true where a key is a real token.
    fn forward(&self, xs: &Tensor, mask: &Tensor, train: bool) -> Tensor {
        let (b, l, h) = xs.size3().expect("hidden states are [batch, seq, hidden]");
        let split = |t: Tensor| t.view([b, l, self.heads, h / self.heads]).transpose(1, 2);
        let q = split(self.query.forward(xs));
        let k = split(self.key.forward(xs));
        let v = split(self.value.forward(xs));
        let dropout = if train { self.attention_dropout } else { 0.0 };
        let context = Tensor::scaled_dot_product_attention(
            &q,
            &k,
            &v,
            Some(mask),
            dropout,
            false,
            None,
            false,
        )
        .transpose(1, 2)
        .contiguous()
        .view([b, l, h]);
        let out = self
            .output
            .forward(&context)
            .dropout(self.hidden_dropout, train);
        self.layer_norm.forward(&(out + xs))
    }
}

/// `BertLayer`: attention, then the feed-forward block (`intermediate` and `output`).
#[derive(Debug)]
struct Layer {
    attention: Attention,
    intermediate: Linear,
    activation: Activation,
    output: Linear,
    layer_norm: LayerNorm,
    dropout: f64,
}

impl Layer {
    fn new(p: Path, c: &BertConfig) -> Result<Self> {
        let (h, i, std) = (c.hidden_size, c.intermediate_size, c.initializer_range);
        Ok(Layer {
            attention: Attention::new(&p / "attention", c),
            intermediate: Linear::new(&p / "intermediate" / "dense", h, i, std),
            activation: Activation::parse(&c.hidden_act)?,
            output: Linear::new(&p / "output" / "dense", i, h, std),
            layer_norm: LayerNorm::new(&p / "output" / "LayerNorm", h, c.layer_norm_eps),
            dropout: c.hidden_dropout_prob,
        })
    }

    fn forward(&self, xs: &Tensor, mask: &Tensor, train: bool) -> Tensor {
        let attended = self.attention.forward(xs, mask, train);
        let inner = self.activation.apply(&self.intermediate.forward(&attended));
        let out = self.output.forward(&inner).dropout(self.dropout, train);
        self.layer_norm.forward(&(out + attended))
    }
}

/// `BertModel`: embeddings, the encoder stack and the pooler over `[CLS]`.
#[derive(Debug)]
pub struct BertModel {
    embeddings: Embeddings,
    layers: Vec<Layer>,
    pooler: Linear,
}

/// What `BertModel` returns: per-token states `[batch, seq, hidden]` and the pooled `[CLS]`.
#[derive(Debug)]
pub struct BertOutput {
    pub last_hidden_state: Tensor,
    pub pooler_output: Tensor,
}

impl BertModel {
    pub fn new(p: Path, c: &BertConfig) -> Result<Self> {
        c.validate()?;
        // Creation order is module order: it is the order `named_parameters` reports.
        let embeddings = Embeddings::new(&p / "embeddings", c);
        let encoder = &p / "encoder" / "layer";
        let layers = (0..c.num_hidden_layers)
            .map(|i| Layer::new(&encoder / i, c))
            .collect::<Result<Vec<_>>>()?;
        Ok(BertModel {
            embeddings,
            layers,
            pooler: Linear::new(
                &p / "pooler" / "dense",
                c.hidden_size,
                c.hidden_size,
                c.initializer_range,
            ),
        })
    }

    /// Runs the encoder. `attention_mask` is 1 for real tokens and 0 for padding.
    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        token_type_ids: &Tensor,
        train: bool,
    ) -> BertOutput {
        let mask = attention_mask.gt(0).unsqueeze(1).unsqueeze(1);
        let mut xs = self.embeddings.forward(input_ids, token_type_ids, train);
        for layer in &self.layers {
            xs = layer.forward(&xs, &mask, train);
        }
        let pooler_output = self.pooler.forward(&xs.select(1, 0)).tanh();
        BertOutput {
            last_hidden_state: xs,
            pooler_output,
        }
    }
}
