//! The parameters a `config.json` implies, known without allocating any of them.
//!
//! A mistyped size (`vocab_size: 100000000000`) would otherwise surface as an allocation
//! failure deep inside libtorch. Knowing each parameter's name, shape and the config field
//! behind every dimension lets loading compare the config with the weights file's header
//! first (see `weights::check_header`), and lets a model built from a config alone refuse a
//! size the machine cannot hold, naming the field either way.
//!
//! The list follows the var store exactly (names and creation order of `model/bert.rs` and
//! `model/classifier.rs`); `tests/model_loading.rs` checks that it does.

use super::config::{field_name, BertConfig};
use super::family::Family;

/// One dimension of a parameter: its size and the config field that sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dim {
    pub size: i64,
    pub field: &'static str,
}

/// A parameter the config implies: its Hugging Face name and shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamShape {
    pub name: String,
    pub dims: Vec<Dim>,
}

impl ParamShape {
    pub fn shape(&self) -> Vec<i64> {
        self.dims.iter().map(|d| d.size).collect()
    }

    /// Number of values, without overflow whatever the config says.
    pub fn numel(&self) -> u128 {
        self.dims
            .iter()
            .map(|d| d.size.max(0) as u128)
            .fold(1, u128::saturating_mul)
    }
}

fn dims(list: &[(i64, &'static str)]) -> Vec<Dim> {
    list.iter()
        .map(|&(size, field)| Dim { size, field })
        .collect()
}

/// The dimensions of each config field, for one place to name them.
struct Sizes {
    vocab: (i64, &'static str),
    hidden: (i64, &'static str),
    /// The embeddings' width (ELECTRA's `embedding_size`; `hidden_size` elsewhere).
    embedding: (i64, &'static str),
    intermediate: (i64, &'static str),
    positions: (i64, &'static str),
    types: (i64, &'static str),
    labels: (i64, &'static str),
}

impl Sizes {
    /// Each dimension named as the family's `config.json` names it (`dim` for DistilBERT).
    fn of(c: &BertConfig) -> Self {
        let f = |field| field_name(family(c), field);
        Sizes {
            vocab: (c.vocab_size, "vocab_size"),
            hidden: (c.hidden_size, f("hidden_size")),
            embedding: if c.embedding_size() == c.hidden_size {
                (c.hidden_size, f("hidden_size"))
            } else {
                (c.embedding_size(), "embedding_size")
            },
            intermediate: (c.intermediate_size, f("intermediate_size")),
            positions: (c.max_position_embeddings, "max_position_embeddings"),
            types: (c.type_vocab_size, "type_vocab_size"),
            labels: (c.num_labels() as i64, "num_labels"),
        }
    }
}

/// `weight` `[out, in]` and `bias` `[out]` of a linear layer at `prefix`.
fn linear(out: &mut Vec<ParamShape>, prefix: &str, o: (i64, &'static str), i: (i64, &'static str)) {
    linear_with(out, prefix, o, i, true)
}

/// [`linear`], with a bias only where `bias` (ModernBERT's switches).
fn linear_with(
    out: &mut Vec<ParamShape>,
    prefix: &str,
    o: (i64, &'static str),
    i: (i64, &'static str),
    bias: bool,
) {
    out.push(ParamShape {
        name: format!("{prefix}.weight"),
        dims: dims(&[o, i]),
    });
    if bias {
        out.push(ParamShape {
            name: format!("{prefix}.bias"),
            dims: dims(&[o]),
        });
    }
}

fn layer_norm(out: &mut Vec<ParamShape>, prefix: &str, h: (i64, &'static str)) {
    layer_norm_with(out, prefix, h, true)
}

fn layer_norm_with(out: &mut Vec<ParamShape>, prefix: &str, h: (i64, &'static str), bias: bool) {
    let parts: &[&str] = if bias {
        &["weight", "bias"]
    } else {
        &["weight"]
    };
    for part in parts {
        out.push(ParamShape {
            name: format!("{prefix}.{part}"),
            dims: dims(&[h]),
        });
    }
}

/// ModernBERT's bias switches (`attention_bias`, `mlp_bias`, `norm_bias`, `classifier_bias`),
/// its defaults where the config cannot be read (loading refuses such a config anyway).
fn modern(c: &BertConfig) -> (bool, bool, bool, bool) {
    match c.modernbert() {
        Ok(o) => (o.attention_bias, o.mlp_bias, o.norm_bias, o.classifier_bias),
        Err(_) => (false, false, false, false),
    }
}

fn family(c: &BertConfig) -> Family {
    c.family().unwrap_or(Family::Bert)
}

/// The encoder's parameter prefix (`bert`, `roberta`; see [`super::Family::prefix`]).
fn prefix(c: &BertConfig) -> &'static str {
    family(c).prefix()
}

/// The embeddings' parameters, in creation order.
pub fn embeddings(c: &BertConfig) -> Vec<ParamShape> {
    let s = Sizes::of(c);
    let p = prefix(c);
    let mut out = Vec::new();
    if family(c) == Family::ModernBert {
        out.push(ParamShape {
            name: format!("{p}.embeddings.tok_embeddings.weight"),
            dims: dims(&[s.vocab, s.hidden]),
        });
        layer_norm_with(
            &mut out,
            &format!("{p}.embeddings.norm"),
            s.hidden,
            modern(c).2,
        );
        return out;
    }
    let mut tables = vec![("word_embeddings", s.vocab)];
    if c.has_position_embeddings() {
        tables.push(("position_embeddings", s.positions));
    }
    if c.has_token_types() {
        tables.push(("token_type_embeddings", s.types));
    }
    for (name, rows) in tables {
        out.push(ParamShape {
            name: format!("{p}.embeddings.{name}.weight"),
            dims: dims(&[rows, s.embedding]),
        });
    }
    layer_norm(&mut out, &format!("{p}.embeddings.LayerNorm"), s.embedding);
    if s.embedding.0 != s.hidden.0 {
        linear(
            &mut out,
            &format!("{p}.embeddings_project"),
            s.hidden,
            s.embedding,
        );
    }
    out
}

/// Encoder layer `i`'s parameters, in creation order.
pub fn layer(c: &BertConfig, i: i64) -> Vec<ParamShape> {
    let s = Sizes::of(c);
    let n = family(c).encoder_names();
    let p = format!("{}.{}.{i}", prefix(c), n.layers);
    let mut out = Vec::new();
    if family(c) == Family::ModernBert {
        let (attention, mlp, norm, _) = modern(c);
        if i > 0 {
            layer_norm_with(&mut out, &format!("{p}.attn_norm"), s.hidden, norm);
        }
        let qkv = (s.hidden.0.saturating_mul(3), "hidden_size (× 3)");
        linear_with(
            &mut out,
            &format!("{p}.attn.Wqkv"),
            qkv,
            s.hidden,
            attention,
        );
        linear_with(
            &mut out,
            &format!("{p}.attn.Wo"),
            s.hidden,
            s.hidden,
            attention,
        );
        layer_norm_with(&mut out, &format!("{p}.mlp_norm"), s.hidden, norm);
        let wi = (
            s.intermediate.0.saturating_mul(2),
            "intermediate_size (× 2)",
        );
        linear_with(&mut out, &format!("{p}.mlp.Wi"), wi, s.hidden, mlp);
        linear_with(
            &mut out,
            &format!("{p}.mlp.Wo"),
            s.hidden,
            s.intermediate,
            mlp,
        );
        return out;
    }
    for part in [n.query, n.key, n.value, n.attention_output] {
        linear(&mut out, &format!("{p}.{part}"), s.hidden, s.hidden);
    }
    layer_norm(&mut out, &format!("{p}.{}", n.attention_norm), s.hidden);
    linear(
        &mut out,
        &format!("{p}.{}", n.intermediate),
        s.intermediate,
        s.hidden,
    );
    linear(
        &mut out,
        &format!("{p}.{}", n.output),
        s.hidden,
        s.intermediate,
    );
    layer_norm(&mut out, &format!("{p}.{}", n.output_norm), s.hidden);
    out
}

/// What the encoder holds after its layers: DeBERTa's relative-position table
/// (`encoder.rel_embeddings`, 2 × `position_buckets` rows) and its LayerNorm.
pub fn encoder_tail(c: &BertConfig) -> Vec<ParamShape> {
    let s = Sizes::of(c);
    let mut out = Vec::new();
    if family(c) == Family::ModernBert {
        let p = format!("{}.final_norm", prefix(c));
        layer_norm_with(&mut out, &p, s.hidden, modern(c).2);
    }
    let relative = match family(c) {
        Family::DebertaV2 => c.deberta().ok().flatten(),
        _ => None,
    };
    if let Some(r) = relative {
        let p = format!("{}.encoder", prefix(c));
        out.push(ParamShape {
            name: format!("{p}.rel_embeddings.weight"),
            dims: dims(&[(r.table_rows(), "position_buckets"), s.hidden]),
        });
        if r.norm {
            layer_norm(&mut out, &format!("{p}.LayerNorm"), s.hidden);
        }
    }
    out
}

/// The pooler's and the classification head's parameters: BERT's `bert.pooler.dense` and
/// `classifier`, RoBERTa's `classifier.dense` and `classifier.out_proj`, DistilBERT's
/// `pre_classifier` and `classifier`.
pub fn pooler_and_head(c: &BertConfig) -> Vec<ParamShape> {
    let s = Sizes::of(c);
    let family = family(c);
    let mut out = Vec::new();
    if family.pools() {
        linear(
            &mut out,
            &format!("{}.pooler.dense", family.prefix()),
            s.hidden,
            s.hidden,
        );
    }
    let head = family.sequence_head();
    let (_, _, norm_bias, dense_bias) = match family {
        Family::ModernBert => modern(c),
        _ => (true, true, true, true),
    };
    if let Some((dense, _)) = head.dense {
        linear_with(&mut out, dense, s.hidden, s.hidden, dense_bias);
    }
    if let Some(norm) = head.norm {
        layer_norm_with(&mut out, norm, s.hidden, norm_bias);
    }
    linear(&mut out, head.out, s.labels, s.hidden);
    out
}

/// Every parameter of `BertForSequenceClassification` for the first `layers` encoder layers
/// (the config's count may be absurd; the caller bounds it).
pub fn parameters(c: &BertConfig, layers: i64) -> Vec<ParamShape> {
    let mut out = embeddings(c);
    for i in 0..layers.min(c.num_hidden_layers) {
        out.extend(layer(c, i));
    }
    out.extend(encoder_tail(c));
    out.extend(pooler_and_head(c));
    out
}

fn total(params: &[ParamShape]) -> u128 {
    params
        .iter()
        .map(ParamShape::numel)
        .fold(0, u128::saturating_add)
}

/// What a model of this config holds, by part, without listing every layer.
#[derive(Debug, Clone)]
pub struct Footprint {
    /// Parameters in all: the sum of the rest.
    pub parameters: u128,
    /// The largest part: a description naming its config fields, and its parameter count.
    pub largest: (String, u128),
}

/// The parameter count of `c`, and which part of it is largest (for an error naming the
/// field that made it so).
pub fn footprint(c: &BertConfig) -> Footprint {
    let named = |p: &ParamShape| {
        let shape: Vec<String> = p
            .dims
            .iter()
            .map(|d| format!("{} = {}", d.field, d.size))
            .collect();
        (format!("{} [{}]", p.name, shape.join(", ")), p.numel())
    };
    let mut parts: Vec<(String, u128)> = embeddings(c)
        .iter()
        .chain(encoder_tail(c).iter())
        .chain(pooler_and_head(c).iter())
        .map(named)
        .collect();
    let per_layer = total(&layer(c, 0));
    let layers = (c.num_hidden_layers.max(0) as u128).saturating_mul(per_layer);
    parts.push((
        format!(
            "the encoder: num_hidden_layers = {} layers of {per_layer} parameters \
             (hidden_size = {}, intermediate_size = {})",
            c.num_hidden_layers, c.hidden_size, c.intermediate_size
        ),
        layers,
    ));
    let parameters = parts.iter().map(|p| p.1).fold(0, u128::saturating_add);
    let largest = parts
        .into_iter()
        .max_by_key(|p| p.1)
        .unwrap_or_else(|| (String::new(), 0));
    Footprint {
        parameters,
        largest,
    }
}
