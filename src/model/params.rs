//! The tutorial's look at the parameters: how many, and the shapes of three groups.

use std::fmt;

use crate::display::{Html, Rich, Table};

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
            crate::cola::thousands(self.total() as usize)
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
