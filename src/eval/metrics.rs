//! The metrics: accuracy, Matthews correlation (CoLA's official metric, sklearn's
//! `matthews_corrcoef`) and the confusion matrix.

use std::fmt;

use crate::viz::display::{Html, Rich, Table};

/// Matthews correlation coefficient for any number of classes (sklearn's
/// `matthews_corrcoef`): 0.0 when either the predictions or the labels hold a single class,
/// where the coefficient is undefined.
pub fn matthews(preds: &[i64], labels: &[i64]) -> f64 {
    let classes = preds
        .iter()
        .chain(labels)
        .copied()
        .max()
        .map_or(0, |m| m as usize + 1);
    let cm = ConfusionMatrix::new(preds, labels, classes.max(2));
    cm.matthews()
}

/// Share of predictions equal to their label.
pub fn accuracy(preds: &[i64], labels: &[i64]) -> f64 {
    if labels.is_empty() {
        return 0.0;
    }
    let right = preds.iter().zip(labels).filter(|(p, l)| p == l).count();
    right as f64 / labels.len() as f64
}

/// Counts by (true label, predicted label).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfusionMatrix {
    /// `counts[true][pred]`.
    pub counts: Vec<Vec<usize>>,
}

impl ConfusionMatrix {
    pub fn new(preds: &[i64], labels: &[i64], classes: usize) -> Self {
        let mut counts = vec![vec![0; classes]; classes];
        for (&p, &l) in preds.iter().zip(labels) {
            counts[l as usize][p as usize] += 1;
        }
        ConfusionMatrix { counts }
    }

    pub fn matthews(&self) -> f64 {
        let k = self.counts.len();
        let t: Vec<f64> = (0..k)
            .map(|i| self.counts[i].iter().sum::<usize>() as f64)
            .collect();
        let p: Vec<f64> = (0..k)
            .map(|j| (0..k).map(|i| self.counts[i][j]).sum::<usize>() as f64)
            .collect();
        let s: f64 = t.iter().sum();
        let c: f64 = (0..k).map(|i| self.counts[i][i] as f64).sum();
        let pt: f64 = p.iter().zip(&t).map(|(a, b)| a * b).sum();
        let pp: f64 = p.iter().map(|a| a * a).sum();
        let tt: f64 = t.iter().map(|a| a * a).sum();
        let denominator = ((s * s - pp) * (s * s - tt)).sqrt();
        if denominator == 0.0 {
            0.0
        } else {
            (c * s - pt) / denominator
        }
    }
}

impl fmt::Display for ConfusionMatrix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.table())
    }
}

impl ConfusionMatrix {
    fn table(&self) -> Table {
        let k = self.counts.len();
        let headers: Vec<String> = std::iter::once("true \\ predicted".to_string())
            .chain((0..k).map(|j| j.to_string()))
            .collect();
        let refs: Vec<&str> = headers.iter().map(String::as_str).collect();
        let mut table = Table::new("Confusion matrix", &refs);
        for (i, row) in self.counts.iter().enumerate() {
            table.push_row(std::iter::once(i.to_string()).chain(row.iter().map(|c| c.to_string())));
        }
        table
    }
}

impl Rich for ConfusionMatrix {
    fn html(&self) -> Option<Html> {
        self.table().html()
    }
}

crate::impl_evcxr_display!(ConfusionMatrix);
