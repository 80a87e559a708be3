//! The tutorial's look at the parameters: their Hugging Face names, how many, the shapes of
//! three groups, and the two weight-decay groups.

use std::fmt;

use tch::Tensor;

use super::classifier::BertForSequenceClassification;
use super::layers::{DECAY, NO_DECAY};
use crate::runtime::display::{Html, Rich, Table};

impl BertForSequenceClassification {
    /// Parameters in module order with Hugging Face names (what `named_parameters()` yields).
    pub fn named_parameters(&self) -> Vec<(String, Tensor)> {
        super::checkpoint::named_parameters_of(&self.vs)
    }

    fn parameters_with_groups(&self) -> Vec<(String, Tensor, usize)> {
        super::checkpoint::parameters_with_groups(&self.vs)
    }

    /// The two weight-decay groups of the tutorial's appendix, with counts and examples.
    pub fn weight_decay_groups(&self, weight_decay: f64) -> DecayGroups {
        let params = self.parameters_with_groups();
        [
            (DECAY, "weights", weight_decay),
            (NO_DECAY, "biases and LayerNorm", 0.0),
        ]
        .into_iter()
        .map(|(group, label, decay)| {
            let members: Vec<&(String, Tensor, usize)> =
                params.iter().filter(|(_, _, g)| *g == group).collect();
            DecayGroup {
                label,
                weight_decay: decay,
                tensors: members.len(),
                values: members.iter().map(|(_, t, _)| t.numel()).sum(),
                examples: members.iter().take(3).map(|(n, _, _)| n.clone()).collect(),
            }
        })
        .collect::<Vec<_>>()
        .into()
    }

    /// The tutorial's parameter listing: count, embeddings, first layer, output layer.
    pub fn parameter_listing(&self) -> ParameterListing {
        ParameterListing::new(
            self.named_parameters()
                .into_iter()
                .map(|(n, t)| (n, t.size()))
                .collect(),
        )
    }
}

/// A parameter's Hugging Face name and shape.
pub type NamedShape = (String, Vec<i64>);

/// Named parameter shapes in module order.
#[derive(Debug, Clone)]
pub struct ParameterListing {
    pub named: Vec<NamedShape>,
}

/// The encoder layer a parameter belongs to: the number after `layer` or `layers` in its name
/// (`bert.encoder.layer.3.…`, DistilBERT's `transformer.layer.3.…`, ModernBERT's
/// `model.layers.3.…`).
fn layer_of(name: &str) -> Option<usize> {
    let parts: Vec<&str> = name.split('.').collect();
    parts
        .windows(2)
        .find(|w| w[0] == "layer" || w[0] == "layers")
        .and_then(|w| w[1].parse().ok())
}

impl ParameterListing {
    pub fn new(named: Vec<NamedShape>) -> Self {
        ParameterListing { named }
    }

    pub fn len(&self) -> usize {
        self.named.len()
    }

    pub fn is_empty(&self) -> bool {
        self.named.is_empty()
    }

    /// Total number of scalar parameters.
    pub fn total(&self) -> i64 {
        self.named
            .iter()
            .map(|(_, s)| s.iter().product::<i64>())
            .sum()
    }

    /// (section title, parameters) for the embeddings, the first layer and the output layer,
    /// found by name so that every family's are right (BERT: 5, 16 and 4 tensors, the
    /// tutorial's): what comes before the first layer, the first layer, what comes after the
    /// last (the pooler and the head; DeBERTa's shared position table, ModernBERT's final
    /// norm).
    pub fn sections(&self) -> Vec<(&'static str, &[NamedShape])> {
        let n = self.named.len();
        let layers: Vec<Option<usize>> =
            self.named.iter().map(|(name, _)| layer_of(name)).collect();
        let first_start = layers.iter().position(|l| l.is_some()).unwrap_or(n);
        let first_end = first_start
            + layers[first_start..]
                .iter()
                .take_while(|l| **l == layers[first_start])
                .count();
        let output_start = layers
            .iter()
            .rposition(|l| l.is_some())
            .map_or(first_end, |last| (last + 1).max(first_end));
        vec![
            ("Embedding Layer", &self.named[..first_start]),
            ("First Transformer", &self.named[first_start..first_end]),
            ("Output Layer", &self.named[output_start..]),
        ]
    }

    fn table(&self) -> Table {
        let mut table = Table::new(self.headline(), &["section", "parameter", "shape"]);
        for (title, params) in self.sections() {
            for (name, shape) in params {
                table.push_row([title.to_string(), name.clone(), format!("{shape:?}")]);
            }
        }
        table
    }

    fn headline(&self) -> String {
        // The tutorial's words for BERT; the others by their class prefix's family.
        let model = match self.named.first().and_then(|(n, _)| n.split('.').next()) {
            Some("bert") | None => "BERT",
            Some("roberta") => "RoBERTa",
            Some("distilbert") => "DistilBERT",
            Some("electra") => "ELECTRA",
            Some("deberta") => "DeBERTa",
            Some("model") => "ModernBERT",
            Some(_) => "encoder",
        };
        format!(
            "The {model} model has {} different named parameters ({} values in all).",
            self.len(),
            crate::runtime::display::thousands(self.total() as usize)
        )
    }
}

impl fmt::Display for ParameterListing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.headline())?;
        for (title, params) in self.sections() {
            write!(f, "\n\n==== {title} ====\n")?;
            for (name, shape) in params {
                write!(f, "\n{name:<55} {:>12}", format!("{shape:?}"))?;
            }
        }
        Ok(())
    }
}

impl Rich for ParameterListing {
    fn html(&self) -> Option<Html> {
        self.table().html()
    }
}

crate::impl_evcxr_display!(ParameterListing);

/// One weight-decay group of the optimizer: which parameters, how many values, the decay.
#[derive(Debug, Clone)]
pub struct DecayGroup {
    pub label: &'static str,
    pub weight_decay: f64,
    pub tensors: usize,
    pub values: usize,
    /// The first three parameter names.
    pub examples: Vec<String>,
}

/// The optimizer's weight-decay groups; shown as the tutorial's appendix table.
#[derive(Debug, Clone)]
pub struct DecayGroups(pub Vec<DecayGroup>);

impl From<Vec<DecayGroup>> for DecayGroups {
    fn from(groups: Vec<DecayGroup>) -> Self {
        DecayGroups(groups)
    }
}

impl DecayGroups {
    fn table(&self) -> Table {
        let mut table = Table::new(
            "Weight-decay groups",
            &["group", "weight decay", "tensors", "values", "examples"],
        );
        for g in &self.0 {
            table.push_row([
                g.label.to_string(),
                format!("{}", g.weight_decay),
                g.tensors.to_string(),
                crate::runtime::display::thousands(g.values),
                format!("{}, …", g.examples.join(", ")),
            ]);
        }
        table
    }
}

impl fmt::Display for DecayGroups {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.table())
    }
}

impl Rich for DecayGroups {
    fn html(&self) -> Option<Html> {
        self.table().html()
    }
}

crate::impl_evcxr_display!(DecayGroups);

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(names: &[&str]) -> ParameterListing {
        ParameterListing::new(names.iter().map(|n| (n.to_string(), vec![1])).collect())
    }

    fn section_names(l: &ParameterListing) -> Vec<Vec<String>> {
        l.sections()
            .into_iter()
            .map(|(_, p)| p.iter().map(|(n, _)| n.clone()).collect())
            .collect()
    }

    #[test]
    fn sections_follow_the_names_of_every_family() {
        let modern = listing(&[
            "model.embeddings.tok_embeddings.weight",
            "model.embeddings.norm.weight",
            "model.layers.0.attn.Wqkv.weight",
            "model.layers.0.mlp.Wo.weight",
            "model.layers.1.attn_norm.weight",
            "model.final_norm.weight",
            "head.dense.weight",
            "head.norm.weight",
            "classifier.weight",
            "classifier.bias",
        ]);
        assert_eq!(
            section_names(&modern),
            [
                vec![
                    "model.embeddings.tok_embeddings.weight",
                    "model.embeddings.norm.weight"
                ],
                vec![
                    "model.layers.0.attn.Wqkv.weight",
                    "model.layers.0.mlp.Wo.weight"
                ],
                vec![
                    "model.final_norm.weight",
                    "head.dense.weight",
                    "head.norm.weight",
                    "classifier.weight",
                    "classifier.bias"
                ],
            ]
        );
        assert!(modern
            .to_string()
            .starts_with("The ModernBERT model has 10"));
        let distil = listing(&[
            "distilbert.embeddings.word_embeddings.weight",
            "distilbert.transformer.layer.0.attention.q_lin.weight",
            "distilbert.transformer.layer.1.attention.q_lin.weight",
            "pre_classifier.weight",
        ]);
        assert_eq!(
            section_names(&distil)
                .iter()
                .map(Vec::len)
                .collect::<Vec<_>>(),
            [1, 1, 1]
        );
    }
}
