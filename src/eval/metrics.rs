//! The metrics, each as scikit-learn or scipy defines it (checked against them in
//! `tests/metrics.rs`): accuracy; Matthews correlation (CoLA's official metric, binary and
//! multi-class); the confusion matrix with per-class and macro precision, recall and F1;
//! binary F1 (MRPC, QQP); Pearson and Spearman (STS-B, regression); micro-F1 and subset
//! accuracy (multi-label).

use std::fmt;

use crate::runtime::display::{Html, Rich, Table};

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

/// Precision, recall, F1 and support of one class.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassScores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Rows whose true label is this class.
    pub support: usize,
}

/// `a / b`, 0.0 when `b` is 0 (sklearn's `zero_division=0`, its value when it warns).
fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        0.0
    } else {
        a / b
    }
}

fn f1_of(precision: f64, recall: f64) -> f64 {
    ratio(2.0 * precision * recall, precision + recall)
}

impl ConfusionMatrix {
    /// Per-class scores, class by class (sklearn's `precision_recall_fscore_support` with
    /// `average=None` over `labels=range(k)`).
    pub fn per_class(&self) -> Vec<ClassScores> {
        let k = self.counts.len();
        (0..k)
            .map(|c| {
                let tp = self.counts[c][c] as f64;
                let predicted: usize = (0..k).map(|t| self.counts[t][c]).sum();
                let support: usize = self.counts[c].iter().sum();
                let precision = ratio(tp, predicted as f64);
                let recall = ratio(tp, support as f64);
                ClassScores {
                    precision,
                    recall,
                    f1: f1_of(precision, recall),
                    support,
                }
            })
            .collect()
    }

    /// The unweighted mean over classes of precision, recall and F1 (sklearn's
    /// `average="macro"`: F1 is the mean of the per-class F1s); support is the row count.
    pub fn macro_average(&self) -> ClassScores {
        let per_class = self.per_class();
        let k = per_class.len().max(1) as f64;
        let mean = |f: fn(&ClassScores) -> f64| per_class.iter().map(f).sum::<f64>() / k;
        ClassScores {
            precision: mean(|s| s.precision),
            recall: mean(|s| s.recall),
            f1: mean(|s| s.f1),
            support: per_class.iter().map(|s| s.support).sum(),
        }
    }
}

/// F1 of class 1 in a binary task (sklearn's `f1_score`, the default `pos_label=1`): what
/// GLUE reports for MRPC and QQP.
pub fn binary_f1(preds: &[i64], labels: &[i64]) -> f64 {
    let cm = ConfusionMatrix::new(preds, labels, 2);
    cm.per_class()[1].f1
}

/// Pearson's correlation coefficient (scipy's `pearsonr`); 0.0 when either side is constant.
pub fn pearson(xs: &[f64], ys: &[f64]) -> f64 {
    let n = xs.len().min(ys.len());
    if n == 0 {
        return 0.0;
    }
    let mean = |v: &[f64]| v[..n].iter().sum::<f64>() / n as f64;
    let (mx, my) = (mean(xs), mean(ys));
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in xs[..n].iter().zip(&ys[..n]) {
        let (dx, dy) = (x - mx, y - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    ratio(sxy, (sxx * syy).sqrt())
}

/// Ranks from 1, ties sharing their average rank (scipy's `rankdata(method="average")`).
pub fn average_ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        // Positions start..end (0-based) hold ranks start+1..=end: their mean.
        let rank = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        start = end;
    }
    ranks
}

/// Spearman's rank correlation (scipy's `spearmanr`): Pearson's over average ranks.
pub fn spearman(xs: &[f64], ys: &[f64]) -> f64 {
    pearson(&average_ranks(xs), &average_ranks(ys))
}

/// Micro-averaged F1 over every (row, label) decision of a multi-label task (sklearn's
/// `f1_score(average="micro")` on indicator matrices).
pub fn micro_f1(preds: &[Vec<bool>], labels: &[Vec<bool>]) -> f64 {
    let (mut tp, mut fp, mut fn_) = (0.0, 0.0, 0.0);
    for (p, l) in preds.iter().zip(labels) {
        for (&p, &l) in p.iter().zip(l) {
            match (p, l) {
                (true, true) => tp += 1.0,
                (true, false) => fp += 1.0,
                (false, true) => fn_ += 1.0,
                (false, false) => {}
            }
        }
    }
    ratio(2.0 * tp, 2.0 * tp + fp + fn_)
}

/// Share of rows whose every label is right (sklearn's `accuracy_score` on indicator
/// matrices).
pub fn subset_accuracy(preds: &[Vec<bool>], labels: &[Vec<bool>]) -> f64 {
    if labels.is_empty() {
        return 0.0;
    }
    let right = preds.iter().zip(labels).filter(|(p, l)| p == l).count();
    right as f64 / labels.len() as f64
}
