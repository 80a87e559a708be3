//! [`History`]: what a run did, as data: its settings, the loss of every batch and the figures
//! of every epoch. It formats no log line (that is [`super::Event`]'s job); it shows as a table
//! in a notebook and serialises to `history.json`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Instant;

use anyhow::{bail, Result};
use serde::{Deserialize, Deserializer, Serialize};
use tch::Device;

use super::config::{greater_is_better, metric_key};
use super::losses::EpochLosses;
use super::TrainConfig;
use crate::data::EncodedSet;
use crate::eval::Evaluation;
use crate::runtime::display::{clock, Html, Rich, Table};

/// JSON has no NaN: serde_json writes it as `null`, and this reads `null` back as NaN (an
/// accuracy or MCC a regression does not have).
fn null_as_nan<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Figures of one epoch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochStats {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_seconds: f64,
    pub sentences_per_second: f64,
    pub val_loss: f64,
    /// Accuracy of classes (single-label) or subset accuracy (multi-label); NaN for a
    /// regression.
    #[serde(deserialize_with = "null_as_nan")]
    pub val_accuracy: f64,
    /// NaN unless single-label.
    #[serde(deserialize_with = "null_as_nan")]
    pub val_mcc: f64,
    pub val_seconds: f64,
    /// Every metric of the problem type (see `Evaluation::metrics`).
    #[serde(default)]
    pub val_metrics: BTreeMap<String, f64>,
}

/// One evaluation of the validation set: after an epoch, or every `eval_steps` steps.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalRecord {
    /// Optimizer steps done when it ran.
    pub step: usize,
    /// Epochs done, with the fraction of the current one (transformers logs it so).
    pub epoch: f64,
    pub metrics: BTreeMap<String, f64>,
}

/// The evaluation that scored best on `metric_for_best_model`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BestEval {
    pub metric: String,
    pub value: f64,
    pub step: usize,
    pub epoch: f64,
}

/// What a run did: settings, the loss of every batch and per-epoch figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct History {
    pub config: TrainConfig,
    pub device: String,
    pub max_len: usize,
    pub padding: String,
    pub train_size: usize,
    pub val_size: usize,
    pub batch_losses: Vec<f64>,
    /// Share of the positions of all training batches that were padding.
    #[serde(default)]
    pub padded_share: f64,
    pub epochs: Vec<EpochStats>,
    /// Every evaluation of the validation set, in order.
    #[serde(default)]
    pub evaluations: Vec<EvalRecord>,
    /// The best evaluation so far, when `metric_for_best_model` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best: Option<BestEval>,
    /// Evaluations in a row without an improvement beyond `early_stopping_threshold`.
    #[serde(default)]
    pub evaluations_without_improvement: usize,
    /// True when early stopping ended the run.
    #[serde(default)]
    pub stopped_early: bool,
    /// Training rows whose text was cut at `max_len`.
    #[serde(default)]
    pub train_truncated: usize,
    /// fp16: the optimizer steps (1-based, counting skipped ones) whose gradients held an inf
    /// or NaN after unscaling, so neither the optimizer nor the schedule stepped.
    #[serde(default)]
    pub skipped_steps: Vec<usize>,
    pub total_seconds: f64,
    /// Padded and total positions of the batches trained so far (for `padded_share`).
    #[serde(default)]
    padded_positions: f64,
    #[serde(default)]
    positions: usize,
    /// Training figures of the epoch whose validation has not run yet.
    #[serde(skip)]
    open_epoch: Option<EpochStats>,
    /// When this process took the run over, and the seconds spent before (a resumed run).
    #[serde(skip)]
    clock: Option<(Instant, f64)>,
}

impl History {
    /// An empty history of a run of `config` on these sets; its clock starts now.
    pub fn new(config: &TrainConfig, train: &EncodedSet, val: &EncodedSet, device: Device) -> Self {
        let mut history = History {
            config: config.clone(),
            device: format!("{device:?}"),
            max_len: train.max_len,
            padding: format!("{:?}", train.padding),
            train_size: train.len(),
            val_size: val.len(),
            batch_losses: Vec::new(),
            padded_share: 0.0,
            epochs: Vec::new(),
            evaluations: Vec::new(),
            best: None,
            evaluations_without_improvement: 0,
            stopped_early: false,
            train_truncated: train.truncated(),
            skipped_steps: Vec::new(),
            total_seconds: 0.0,
            padded_positions: 0.0,
            positions: 0,
            open_epoch: None,
            clock: None,
        };
        history.restart_clock();
        history
    }

    /// Counts time from now on top of the seconds already recorded (after loading a
    /// checkpoint).
    pub fn restart_clock(&mut self) {
        self.clock = Some((Instant::now(), self.total_seconds));
    }

    fn seconds_so_far(&self) -> f64 {
        self.clock.map_or(self.total_seconds, |(t, before)| {
            before + t.elapsed().as_secs_f64()
        })
    }

    /// Files an epoch's training losses (reading them back: a non-finite one is an error
    /// naming its step). A stopped epoch's partial losses are kept too.
    pub fn record_training(&mut self, mut losses: EpochLosses) -> Result<()> {
        let values = losses.read()?.to_vec();
        let train_seconds = losses.elapsed_seconds();
        let train_loss = values.iter().sum::<f64>() / values.len().max(1) as f64;
        self.batch_losses.extend(&values);
        self.padded_positions += losses.padded_positions();
        self.positions += losses.positions();
        if self.positions > 0 {
            self.padded_share = self.padded_positions / self.positions as f64;
        }
        self.total_seconds = self.seconds_so_far();
        self.open_epoch = Some(EpochStats {
            epoch: losses.epoch(),
            train_loss,
            train_seconds,
            sentences_per_second: losses.sentences() as f64 / train_seconds.max(1e-9),
            val_loss: f64::NAN,
            val_accuracy: f64::NAN,
            val_mcc: f64::NAN,
            val_seconds: 0.0,
            val_metrics: BTreeMap::new(),
        });
        Ok(())
    }

    /// The epoch trained but not validated yet, if any.
    pub fn trained_epoch(&self) -> Option<&EpochStats> {
        self.open_epoch.as_ref()
    }

    /// Completes the epoch [`History::record_training`] opened with its validation scores.
    pub fn record_validation(&mut self, scored: &Evaluation) -> Result<()> {
        let Some(mut stats) = self.open_epoch.take() else {
            bail!("an epoch is validated after it is trained (record_training first)");
        };
        stats.val_loss = scored.loss;
        stats.val_accuracy = scored.accuracy();
        stats.val_mcc = scored.mcc();
        stats.val_seconds = scored.seconds;
        stats.val_metrics = scored.metrics();
        self.epochs.push(stats);
        self.total_seconds = self.seconds_so_far();
        Ok(())
    }

    /// Files an evaluation made after `step` optimizer steps, `epoch` epochs in; with
    /// `metric_for_best_model` set, updates the best and the early-stopping count (as
    /// transformers does: a new best is strictly better; an improvement for patience must also
    /// exceed `early_stopping_threshold`). Returns true when it is the new best.
    pub fn record_evaluation(
        &mut self,
        step: usize,
        epoch: f64,
        scored: &Evaluation,
    ) -> Result<bool> {
        let metrics = scored.metrics();
        self.evaluations.push(EvalRecord {
            step,
            epoch,
            metrics: metrics.clone(),
        });
        let Some(name) = self.config.metric_for_best_model.clone() else {
            return Ok(false);
        };
        let key = metric_key(&name);
        let Some(&value) = metrics.get(key) else {
            bail!(
                "metric_for_best_model {name:?}: this {} evaluation reports {}",
                scored.problem_type.name(),
                metrics.keys().cloned().collect::<Vec<_>>().join(", ")
            );
        };
        let better = |a: f64, b: f64| {
            if greater_is_better(key) {
                a > b
            } else {
                a < b
            }
        };
        let previous = self.best.as_ref().map(|b| b.value);
        let improved_enough = previous.is_none_or(|b| {
            better(value, b) && (value - b).abs() > self.config.early_stopping_threshold
        });
        if improved_enough {
            self.evaluations_without_improvement = 0;
        } else {
            self.evaluations_without_improvement += 1;
        }
        let new_best = previous.is_none_or(|b| better(value, b));
        if new_best {
            self.best = Some(BestEval {
                metric: key.to_string(),
                value,
                step,
                epoch,
            });
        }
        Ok(new_best)
    }

    /// True once `early_stopping_patience` evaluations in a row brought no improvement.
    pub fn patience_exhausted(&self) -> bool {
        self.config
            .early_stopping_patience
            .is_some_and(|p| self.evaluations_without_improvement >= p)
    }

    /// Seconds of the whole run so far, a resumed run's earlier ones included.
    pub fn update_clock(&mut self) -> f64 {
        self.total_seconds = self.seconds_so_far();
        self.total_seconds
    }

    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    pub fn from_json(text: &str) -> Result<Self> {
        Ok(serde_json::from_str(text)?)
    }

    /// A checkpoint continues only the run it came from: same settings, same data shape.
    pub fn check_same_run(&self, now: &History) -> Result<()> {
        let key = |h: &History| {
            serde_json::json!([
                h.config,
                h.max_len,
                h.padding,
                h.train_size,
                h.val_size,
                h.device
            ])
        };
        if key(self) != key(now) {
            bail!(
                "it was made by a run with other settings (saved: {}; now: {}); start afresh \
                 without --resume, or resume with the same arguments",
                key(self),
                key(now)
            );
        }
        Ok(())
    }

    /// The validation figures the table shows: the tutorial's accuracy and MCC for
    /// single-label runs, the problem type's own metrics otherwise.
    fn metric_columns(&self) -> Vec<String> {
        let Some(first) = self.epochs.first() else {
            return vec!["accuracy".into(), "mcc".into()];
        };
        if first.val_metrics.is_empty() || first.val_metrics.contains_key("mcc") {
            return vec!["accuracy".into(), "mcc".into()];
        }
        first
            .val_metrics
            .keys()
            .filter(|k| *k != "loss")
            .cloned()
            .collect()
    }

    fn table(&self) -> Table {
        let metrics = self.metric_columns();
        let mut header: Vec<String> =
            vec!["epoch".into(), "training loss".into(), "valid. loss".into()];
        for m in &metrics {
            header.push(match m.as_str() {
                "accuracy" => "valid. accuracy".to_string(),
                "mcc" => "valid. MCC".to_string(),
                other => format!("valid. {other}"),
            });
        }
        header.extend(["training time", "validation time", "sentences/s"].map(String::from));
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        let mut table = Table::new("Training statistics", &header);
        for e in &self.epochs {
            let mut row = vec![
                e.epoch.to_string(),
                format!("{:.4}", e.train_loss),
                format!("{:.4}", e.val_loss),
            ];
            for m in &metrics {
                let v = match m.as_str() {
                    "accuracy" => e.val_accuracy,
                    "mcc" => e.val_mcc,
                    other => e.val_metrics.get(other).copied().unwrap_or(f64::NAN),
                };
                row.push(format!("{v:.4}"));
            }
            row.extend([
                clock(e.train_seconds),
                clock(e.val_seconds),
                format!("{:.1}", e.sentences_per_second),
            ]);
            table.push_row(row);
        }
        table
    }
}

impl fmt::Display for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.table())
    }
}

impl Rich for History {
    fn html(&self) -> Option<Html> {
        self.table().html()
    }
}

crate::impl_evcxr_display!(History);
