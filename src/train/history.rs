//! [`History`]: what a run did, as data: its settings, the loss of every batch and the figures
//! of every epoch. It formats no log line (that is [`super::Event`]'s job); it shows as a table
//! in a notebook and serialises to `history.json`.

use std::fmt;
use std::time::Instant;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use tch::Device;

use super::losses::EpochLosses;
use super::TrainConfig;
use crate::data::EncodedSet;
use crate::eval::Evaluation;
use crate::viz::display::{clock, Html, Rich, Table};

/// Figures of one epoch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochStats {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_seconds: f64,
    pub sentences_per_second: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
    pub val_mcc: f64,
    pub val_seconds: f64,
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
        self.epochs.push(stats);
        self.total_seconds = self.seconds_so_far();
        Ok(())
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

    fn table(&self) -> Table {
        let mut table = Table::new(
            "Training statistics",
            &[
                "epoch",
                "training loss",
                "valid. loss",
                "valid. accuracy",
                "valid. MCC",
                "training time",
                "validation time",
                "sentences/s",
            ],
        );
        for e in &self.epochs {
            table.push_row([
                e.epoch.to_string(),
                format!("{:.4}", e.train_loss),
                format!("{:.4}", e.val_loss),
                format!("{:.4}", e.val_accuracy),
                format!("{:.4}", e.val_mcc),
                clock(e.train_seconds),
                clock(e.val_seconds),
                format!("{:.1}", e.sentences_per_second),
            ]);
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
