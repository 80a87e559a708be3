//! The building blocks every encoder family shares: `nn.Linear` and `nn.LayerNorm` with
//! Hugging Face's parameter names and weight-decay groups, the activations `hidden_act` names,
//! and attention computed explicitly (transformers' "eager" path, for attention maps).

use anyhow::{anyhow, Result};
use tch::nn::{Init, Path};
use tch::{Device, Kind, Tensor};

use super::config::HiddenAct;
use crate::runtime::ffi;

/// Var-store group of parameters that take weight decay.
pub const DECAY: usize = 0;
/// Var-store group of biases and LayerNorm parameters, which never take weight decay.
pub const NO_DECAY: usize = 1;

/// The feed-forward activation `hidden_act` names (parsed and checked in [`HiddenAct`]).
pub(crate) fn activate(act: HiddenAct, xs: &Tensor) -> Tensor {
    match act {
        HiddenAct::Gelu => xs.gelu("none"),
        HiddenAct::GeluNew | HiddenAct::GeluPytorchTanh | HiddenAct::GeluFast => xs.gelu("tanh"),
        HiddenAct::Relu => xs.relu(),
    }
}

/// A new parameter at `p`: libtorch's allocation failure (a size no machine holds) becomes an
/// error naming the tensor, where tch's `var` would panic.
pub(crate) fn var(p: &Path, name: &str, dims: &[i64], init: Init) -> Result<Tensor> {
    let full = p.path(name);
    let fail = |e: tch::TchError| anyhow!("cannot allocate {full} {dims:?}: {e}");
    match init {
        // tch's `Init::Randn` computes `randn * stdev + mean` with operators that panic;
        // these are the same kernels in the same order (so the same values), fallible.
        Init::Randn { mean, stdev } => {
            let t = Tensor::f_randn(dims, (p.kind(), p.device()))
                .and_then(|t| t.f_mul_scalar(stdev))
                .and_then(|t| t.f_add_scalar(mean))
                .map_err(fail)?;
            Ok(p.add(name, t, true))
        }
        init => p.f_var(name, dims, init).map_err(fail),
    }
}

/// How a new weight is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Draw {
    /// normal(0, std): transformers' init of BERT and the families built like it.
    Normal(f64),
    /// normal(0, std) truncated at ±`cutoff`·std, as `torch.nn.init.trunc_normal_` draws it:
    /// ModernBERT's init (`initializer_cutoff_factor`).
    Truncated { std: f64, cutoff: f64 },
}

/// A new parameter at `p` drawn as `draw` says (fallible, like [`var`]).
pub(crate) fn drawn(p: &Path, name: &str, dims: &[i64], draw: Draw) -> Result<Tensor> {
    match draw {
        Draw::Normal(std) => var(
            p,
            name,
            dims,
            Init::Randn {
                mean: 0.,
                stdev: std,
            },
        ),
        Draw::Truncated { std, cutoff } => {
            let full = p.path(name);
            let fail = |e: tch::TchError| anyhow!("cannot allocate {full} {dims:?}: {e}");
            // torch's inverse-CDF method: uniform between the bounds' CDF values mapped to
            // [-1, 1], erfinv, scaled by std·√2, clamped to the bounds.
            let upper = (1.0 + erf(cutoff / std::f64::consts::SQRT_2)) / 2.0;
            let lower = 1.0 - upper;
            let t = tch::no_grad(|| {
                Tensor::f_empty(dims, (p.kind(), p.device()))
                    .and_then(|mut t| t.f_uniform_(2.0 * lower - 1.0, 2.0 * upper - 1.0))
                    .and_then(|mut t| t.f_erfinv_())
                    .and_then(|t| t.f_mul_scalar(std * std::f64::consts::SQRT_2))
                    .and_then(|t| t.f_clamp(-cutoff * std, cutoff * std))
            })
            .map_err(fail)?;
            Ok(p.add(name, t, true))
        }
    }
}

/// The error function, through libtorch (Rust's standard library has none).
fn erf(x: f64) -> f64 {
    Tensor::from(x).erf().double_value(&[])
}

/// The path `dotted` (`attention.self.query`) below `p`.
pub(crate) fn at<'a>(p: &Path<'a>, dotted: &str) -> Path<'a> {
    dotted.split('.').fold(p.clone(), |p, part| p.sub(part))
}

/// `nn.Linear` with HF's initialisation (normal(0, initializer_range), zero bias). ModernBERT's
/// layers have no bias (`attention_bias`, `mlp_bias`, `classifier_bias` false).
#[derive(Debug)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
}

impl Linear {
    pub fn new(p: Path, in_dim: i64, out_dim: i64, std: f64) -> Result<Self> {
        Self::with_bias(p, in_dim, out_dim, std, true)
    }

    /// `nn.Linear(in_dim, out_dim, bias=bias)`.
    pub fn with_bias(p: Path, in_dim: i64, out_dim: i64, std: f64, bias: bool) -> Result<Self> {
        Self::drawn(p, in_dim, out_dim, Draw::Normal(std), bias)
    }

    /// [`with_bias`](Self::with_bias), the weight drawn as `draw` says.
    pub fn drawn(p: Path, in_dim: i64, out_dim: i64, draw: Draw, bias: bool) -> Result<Self> {
        let weight = drawn(&p.set_group(DECAY), "weight", &[out_dim, in_dim], draw)?;
        let bias = if bias {
            Some(var(
                &p.set_group(NO_DECAY),
                "bias",
                &[out_dim],
                Init::Const(0.),
            )?)
        } else {
            None
        };
        Ok(Linear { weight, bias })
    }

    pub fn forward(&self, xs: &Tensor) -> Tensor {
        xs.linear(&self.weight, self.bias.as_ref())
    }
}

/// `nn.LayerNorm` over the last dimension (without a bias where ModernBERT's `norm_bias` is
/// false).
#[derive(Debug)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Option<Tensor>,
    eps: f64,
    dim: i64,
}

impl LayerNorm {
    pub(crate) fn new(p: Path, dim: i64, eps: f64) -> Result<Self> {
        Self::with_bias(p, dim, eps, true)
    }

    /// `nn.LayerNorm(dim, eps=eps, bias=bias)`.
    pub(crate) fn with_bias(p: Path, dim: i64, eps: f64, bias: bool) -> Result<Self> {
        let p = p.set_group(NO_DECAY);
        Ok(LayerNorm {
            weight: var(&p, "weight", &[dim], Init::Const(1.))?,
            bias: if bias {
                Some(var(&p, "bias", &[dim], Init::Const(0.))?)
            } else {
                None
            },
            eps,
            dim,
        })
    }

    pub(crate) fn forward(&self, xs: &Tensor) -> Tensor {
        xs.layer_norm(
            [self.dim],
            Some(&self.weight),
            self.bias.as_ref(),
            self.eps,
            true,
        )
    }
}

pub(crate) fn embedding_table(
    p: &Path,
    name: &str,
    rows: i64,
    dim: i64,
    std: f64,
) -> Result<Tensor> {
    var(
        &p.set_group(DECAY),
        name,
        &[rows, dim],
        Init::Randn {
            mean: 0.,
            stdev: std,
        },
    )
}

/// Which tokens a layer computes states for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Queries {
    /// Every real token: what the next layer, or `last_hidden_state`, needs.
    AllTokens,
    /// Only each sentence's `[CLS]`: all the pooler reads of the last layer, so classifying
    /// skips most of the last layer's work on the other tokens (their keys and values are still
    /// needed): about a seventh of MiniLM's encoder.
    Cls,
}

/// torch.finfo(kind).min: what masked scores are set to.
pub(crate) fn lowest(kind: Kind) -> f64 {
    match kind {
        Kind::Half => -65504.0,
        Kind::BFloat16 => -3.389_531_389_251_535_5e38,
        Kind::Double => f64::MIN,
        _ => f64::from(f32::MIN),
    }
}

/// `nn.Dropout(p)` (`torch.nn.functional.dropout`), bit for bit: the same mask from the same
/// generator, the same scaling and the same backward as libtorch's `dropout`. On the CPU the
/// mask is drawn by `ffi::bernoulli_`, several times faster than libtorch's serial kernel on
/// CPUs where it takes that path (a third of an attention block's training time there); the
/// rest is `_dropout_impl`'s own steps: `noise.bernoulli_(1 - p)`, `noise.div_(1 - p)`,
/// `input * noise`. On a GPU, or outside float32, libtorch's own (fused) dropout runs.
pub fn dropout(xs: &Tensor, p: f64, train: bool) -> Tensor {
    let fast = train
        && p > 0.0
        && p < 1.0
        && xs.device() == Device::Cpu
        && xs.kind() == Kind::Float
        && xs.numel() > 0;
    if !fast {
        return xs.dropout(p, train);
    }
    let mut noise = xs.empty_like();
    if let Err(e) = ffi::bernoulli_(&mut noise, 1.0 - p) {
        // Only an allocation or a libtorch failure gets here, where tch's own dropout panics.
        panic!("dropout of a {:?} tensor: {e}", xs.size());
    }
    let _ = noise.g_div_scalar_(1.0 - p);
    xs * noise
}

/// Softmax attention of `q` over `k` and `v` (each `[batch, heads, length, head_dim]`):
/// libtorch's `scaled_dot_product_attention`; when training with dropout on the CPU, its own
/// math steps with [`dropout`]'s faster masks (`math_attention`); with
/// `output_attentions` transformers' eager path, which also returns the probabilities
/// (`eager_attention`). `bias` (DeBERTa's position terms, the mask already in it) replaces
/// `mask` where given; `dropout` applies when `train`.
pub fn attend(
    (q, k, v): (&Tensor, &Tensor, &Tensor),
    mask: &Tensor,
    scale: Option<f64>,
    bias: Option<&Tensor>,
    dropout: f64,
    train: bool,
    output_attentions: bool,
) -> (Tensor, Option<Tensor>) {
    if output_attentions {
        let (context, probs) = eager_attention(q, k, v, mask, scale, bias, dropout, train);
        return (context, Some(probs));
    }
    if train && dropout > 0.0 && q.device() == Device::Cpu && q.kind() == Kind::Float {
        return (math_attention(q, k, v, mask, scale, bias, dropout), None);
    }
    let context = Tensor::scaled_dot_product_attention(
        q,
        k,
        v,
        Some(bias.unwrap_or(mask)),
        dropout,
        false,
        scale,
        false,
    );
    (context, None)
}

/// The scale of q·kᵀ: `scale` where given (DeBERTa's), else 1/√head_dim, as SDPA and
/// transformers' eager attention take it.
fn softmax_scale(q: &Tensor, scale: Option<f64>) -> f64 {
    let head_dim = *q.size().last().expect("q is [batch, heads, seq, head_dim]");
    scale.unwrap_or(1.0 / (head_dim as f64).sqrt())
}

/// What `scaled_dot_product_attention` computes on the CPU when training with attention
/// dropout (libtorch's "math" backend, the fused kernels having no dropout there), step for
/// step, so the values and gradients are its own bit for bit (`tests/dropout.rs`), with the
/// dropout drawn by [`dropout`]: q and k each scaled by √scale, q·kᵀ, the mask (padding keys
/// at -inf) or DeBERTa's bias added, softmax, dropout, times v. libtorch's `_safe_softmax`
/// also zeroes rows whose keys are all masked; every row here has a real key (`[CLS]`), where
/// it equals `softmax`, without its extra passes over the scores.
#[allow(clippy::too_many_arguments)]
fn math_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: &Tensor,
    scale: Option<f64>,
    bias: Option<&Tensor>,
    dropout_p: f64,
) -> Tensor {
    let root = softmax_scale(q, scale).sqrt();
    let mut scores = (q * root).matmul(&(k.transpose(-2, -1) * root));
    let _ = match bias {
        Some(bias) => scores.g_add_(bias),
        None => {
            let blocked = Tensor::zeros_like(mask)
                .to_kind(q.kind())
                .masked_fill(&mask.logical_not(), f64::NEG_INFINITY);
            scores.g_add_(&blocked)
        }
    };
    let probs = dropout(&scores.softmax(-1, scores.kind()), dropout_p, true);
    probs.matmul(v)
}

/// transformers' `eager_attention_forward`: softmax(q·kᵀ·scale + bias + mask)·v, returning the
/// probabilities too (`scale` 1/√d unless given; `bias`, DeBERTa's position terms, already
/// holds the mask). Masked keys get the dtype's lowest value, as in transformers, so they
/// receive exactly zero probability. As there, the probabilities returned are the ones used,
/// after dropout when training.
#[allow(clippy::too_many_arguments)]
fn eager_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: &Tensor,
    scale: Option<f64>,
    bias: Option<&Tensor>,
    dropout_p: f64,
    train: bool,
) -> (Tensor, Tensor) {
    let scale = softmax_scale(q, scale);
    let scores = q.matmul(&k.transpose(-1, -2)) * scale;
    let scores = match bias {
        Some(bias) => scores + bias,
        None => scores.masked_fill(&mask.logical_not(), lowest(scores.kind())),
    };
    let probs = dropout(&scores.softmax(-1, scores.kind()), dropout_p, train);
    (probs.matmul(v), probs)
}
