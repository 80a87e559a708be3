//! `make bench`: training throughput of Rust and PyTorch side by side, summarised as a table,
//! `out/bench.json` and a bar chart.
//!
//! The runner lives in the CLI (`bert-finetune bench`); this module holds what is worth testing
//! on its own: the batch sample both sides time, medians, ratios and the report.

use std::collections::BTreeMap;
use std::fmt;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use bert_finetune::runtime::display::Table;
use bert_finetune::viz::{self, Figure};

/// The sides of the comparison, in table order.
pub const SIDES: [&str; 3] = ["rust", "pytorch", "pytorch-fused"];
/// The paddings, in table order.
pub const PADDINGS: [&str; 3] = ["fixed", "longest", "bucket"];

/// One timed run of one side at one padding.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    pub side: String,
    pub padding: String,
    pub sentences_per_second: f64,
    pub padded_share: f64,
}

/// A row of `out/bench.json`: the median over repeats.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    pub padding: String,
    pub side: String,
    pub sentences_per_second: f64,
    pub padded_share: f64,
    /// Every repeat's figure, in run order.
    pub repeats: Vec<f64>,
}

/// Rust's throughput over each PyTorch side's, at one padding.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ratios {
    pub vs_pytorch: Option<f64>,
    pub vs_pytorch_fused: Option<f64>,
}

/// What `make bench` writes to `out/bench.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub rows: Vec<Row>,
    pub ratios: BTreeMap<String, Ratios>,
    /// Rust at bucket over Rust at longest.
    pub rust_bucket_vs_longest: Option<f64>,
    /// How it was measured: model, device, threads, steps, repeats, load, operator counts.
    pub setup: serde_json::Value,
}

/// Median of the values (the mean of the middle two for an even count); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Indices of `count` batches spread evenly over an epoch of `total` batches (the first is
/// always batch 0), so a short timing sees the epoch's mix of widths, not just its start.
pub fn spread(total: usize, count: usize) -> Vec<usize> {
    if count >= total {
        return (0..total).collect();
    }
    (0..count).map(|j| j * total / count).collect()
}

impl Report {
    pub fn new(runs: &[Run], setup: serde_json::Value) -> Self {
        let mut rows = Vec::new();
        for padding in PADDINGS {
            for side in SIDES {
                let mine: Vec<&Run> = runs
                    .iter()
                    .filter(|r| r.side == side && r.padding == padding)
                    .collect();
                let repeats: Vec<f64> = mine.iter().map(|r| r.sentences_per_second).collect();
                if let Some(m) = median(&repeats) {
                    rows.push(Row {
                        padding: padding.into(),
                        side: side.into(),
                        sentences_per_second: m,
                        padded_share: mine[0].padded_share,
                        repeats,
                    });
                }
            }
        }
        let speed = |padding: &str, side: &str| {
            rows.iter()
                .find(|r| r.padding == padding && r.side == side)
                .map(|r| r.sentences_per_second)
        };
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
        let mut ratios = BTreeMap::new();
        for padding in PADDINGS {
            let rust = speed(padding, "rust");
            if rust.is_none() {
                continue;
            }
            ratios.insert(
                padding.to_string(),
                Ratios {
                    vs_pytorch: ratio(rust, speed(padding, "pytorch")),
                    vs_pytorch_fused: ratio(rust, speed(padding, "pytorch-fused")),
                },
            );
        }
        let rust_bucket_vs_longest = ratio(speed("bucket", "rust"), speed("longest", "rust"));
        Report {
            rows,
            ratios,
            rust_bucket_vs_longest,
            setup,
        }
    }

    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    fn table(&self) -> Table {
        let mut table = Table::new(
            "Training throughput (sentences/s, median of repeats)",
            &[
                "padding",
                "padded",
                "rust",
                "pytorch",
                "pytorch-fused",
                "rust / pytorch",
                "rust / fused",
            ],
        );
        let num = |v: Option<f64>, digits: usize| {
            v.map_or_else(|| "–".to_string(), |v| format!("{v:.digits$}"))
        };
        for padding in PADDINGS {
            let row = |side: &str| {
                self.rows
                    .iter()
                    .find(|r| r.padding == padding && r.side == side)
            };
            let Some(any) = SIDES.iter().find_map(|s| row(s)) else {
                continue;
            };
            let ratios = self.ratios.get(padding);
            table.push_row([
                display_padding(padding).to_string(),
                format!("{:.0}%", 100.0 * any.padded_share),
                num(row("rust").map(|r| r.sentences_per_second), 1),
                num(row("pytorch").map(|r| r.sentences_per_second), 1),
                num(row("pytorch-fused").map(|r| r.sentences_per_second), 1),
                num(ratios.and_then(|r| r.vs_pytorch), 2),
                num(ratios.and_then(|r| r.vs_pytorch_fused), 2),
            ]);
        }
        table
    }

    /// Grouped bars: one group per padding, one bar per side.
    pub fn chart(&self) -> Result<Figure> {
        let present: Vec<&str> = PADDINGS
            .into_iter()
            .filter(|p| self.rows.iter().any(|r| r.padding == *p))
            .collect();
        let groups: Vec<String> = present
            .iter()
            .map(|p| display_padding(p).to_string())
            .collect();
        let series: Vec<(String, Vec<f64>)> = SIDES
            .iter()
            .map(|side| {
                let values = present
                    .iter()
                    .map(|p| {
                        self.rows
                            .iter()
                            .find(|r| r.padding == *p && r.side == **side)
                            .map_or(0.0, |r| r.sentences_per_second)
                    })
                    .collect();
                (side.to_string(), values)
            })
            .collect();
        viz::grouped_bars(
            "Training throughput by padding",
            "padding",
            "sentences / s",
            &groups,
            &series,
        )
    }
}

fn display_padding(padding: &str) -> &str {
    match padding {
        "fixed" => "fixed-64",
        other => other,
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.table())?;
        if let Some(r) = self.rust_bucket_vs_longest {
            write!(f, "\nrust bucket / rust longest: {r:.2}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_report_has_the_issue_schema() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(spread(10, 5), vec![0, 2, 4, 6, 8]);
        assert_eq!(spread(3, 5), vec![0, 1, 2]);
        let run = |side: &str, padding: &str, v: f64| Run {
            side: side.into(),
            padding: padding.into(),
            sentences_per_second: v,
            padded_share: 0.5,
        };
        let runs = vec![
            run("rust", "longest", 100.0),
            run("rust", "longest", 120.0),
            run("rust", "longest", 110.0),
            run("pytorch", "longest", 80.0),
            run("pytorch-fused", "longest", 100.0),
            run("rust", "bucket", 165.0),
        ];
        let report = Report::new(&runs, serde_json::json!({}));
        let json: serde_json::Value = serde_json::from_str(&report.to_json().unwrap()).unwrap();
        let rows = json["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 4);
        for row in rows {
            for key in ["padding", "side", "sentences_per_second", "padded_share"] {
                assert!(!row[key].is_null(), "{key} in {row}");
            }
        }
        assert_eq!(json["ratios"]["longest"]["vs_pytorch"], 110.0 / 80.0);
        assert_eq!(json["ratios"]["longest"]["vs_pytorch_fused"], 1.1);
        assert_eq!(json["rust_bucket_vs_longest"], 1.5);
        let text = report.to_string();
        assert!(text.contains("longest") && text.contains("1.38"), "{text}");
        let chart = report.chart().unwrap();
        assert!(chart.png.starts_with(b"\x89PNG"));
    }
}
