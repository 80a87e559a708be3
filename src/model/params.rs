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

/// Parameters of one `BertLayer` (attention q/k/v/out + LayerNorm, feed-forward + LayerNorm).
const PER_LAYER: usize = 16;
/// Word, position and token-type tables plus the embedding LayerNorm.
const EMBEDDING: usize = 5;
/// Pooler and classifier, weight and bias each.
const OUTPUT: usize = 4;

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

    /// (section title, parameters) for the embeddings, the first layer and the output layer.
    pub fn sections(&self) -> Vec<(&'static str, &[NamedShape])> {
        let n = self.named.len();
        let first_layer_end = (EMBEDDING + PER_LAYER).min(n);
        vec![
            ("Embedding Layer", &self.named[..EMBEDDING.min(n)]),
            (
                "First Transformer",
                &self.named[EMBEDDING.min(n)..first_layer_end],
            ),
            (
                "Output Layer",
                &self.named[n.saturating_sub(OUTPUT).max(first_layer_end)..],
            ),
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
        format!(
            "The BERT model has {} different named parameters ({} values in all).",
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
