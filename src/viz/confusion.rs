//! The confusion matrix as a coloured grid: which classes the model mixes up, and how often.

use anyhow::{bail, Result};

use super::heatmap::{Heatmap, BLUES};
use super::{render, Figure};
use crate::eval::ConfusionMatrix;

/// The confusion matrix with CoLA's class names (0 = unacceptable, 1 = acceptable) when it
/// has two classes, class numbers otherwise. Rows are true labels, columns predictions; each
/// cell shows its count and its share of the row.
pub fn confusion_matrix(matrix: &ConfusionMatrix) -> Result<Figure> {
    let k = matrix.counts.len();
    let names: Vec<String> = if k == crate::data::cola::LABELS.len() {
        crate::data::cola::LABELS
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        (0..k).map(|i| i.to_string()).collect()
    };
    confusion_matrix_with_labels(matrix, &names)
}

/// [`confusion_matrix`] with the given class names (`labels[i]` names class `i`).
pub fn confusion_matrix_with_labels(
    matrix: &ConfusionMatrix,
    labels: &[impl AsRef<str>],
) -> Result<Figure> {
    let counts = &matrix.counts;
    let k = counts.len();
    if k == 0 {
        bail!("confusion_matrix: the matrix has no classes");
    }
    if labels.len() != k {
        bail!(
            "confusion_matrix: {} class names given for a matrix of {k} classes",
            labels.len()
        );
    }
    if let Some(row) = counts.iter().find(|row| row.len() != k) {
        bail!(
            "confusion_matrix: a row has {} columns; a matrix of {k} classes needs {k}",
            row.len()
        );
    }
    let names: Vec<String> = labels
        .iter()
        .enumerate()
        .map(|(i, name)| format!("{i} {}", name.as_ref()))
        .collect();
    let total: usize = counts.iter().flatten().sum();
    let right: usize = (0..k).map(|i| counts[i][i]).sum();
    let accuracy = if total == 0 {
        0.0
    } else {
        right as f64 / total as f64
    };
    let most = counts.iter().flatten().copied().max().unwrap_or(0).max(1);
    let cells = counts
        .iter()
        .map(|row| {
            let in_row: usize = row.iter().sum();
            row.iter()
                .map(|&n| {
                    let share = if in_row == 0 {
                        0.0
                    } else {
                        100.0 * n as f64 / in_row as f64
                    };
                    vec![
                        crate::runtime::display::thousands(n),
                        format!("{share:.1}% of row"),
                    ]
                })
                .collect()
        })
        .collect();
    render(Heatmap {
        title: format!(
            "Confusion matrix: {} sentences, accuracy {:.1}%, MCC {:.3}",
            crate::runtime::display::thousands(total),
            100.0 * accuracy,
            matrix.matthews()
        ),
        x_label: "predicted".into(),
        y_label: "true".into(),
        columns: names.clone(),
        rows: names,
        values: counts
            .iter()
            .map(|row| row.iter().map(|&n| n as f64).collect())
            .collect(),
        scale: 0.0..most as f64,
        palette: BLUES,
        cells,
        bar_label: "sentences".into(),
        bar_format: |v| format!("{v:.0}"),
        size: (760, 600),
    })
}
