//! The training loop, read top to bottom: per epoch, shuffle, forward with dropout, cross
//! entropy, backward, clip, AdamW, schedule; then score the validation set.
//!
//! Losses stay on the device while training runs and are read back only when a progress line
//! is printed or an epoch ends, so a GPU is never stalled once per step just to log. A
//! non-finite loss stops training at the next read with an error naming the step.

pub mod checkpoint;
mod step;

pub use checkpoint::epoch_seed;
pub use step::training_step;

use std::fmt;
use std::io::Write;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::data::{self, EncodedSet};
use crate::display::{Html, Rich, Table};
use crate::eval;
use crate::model::BertForSequenceClassification;
use crate::optim::{AdamW, AdamWConfig};
use crate::precision::Precision;

/// Everything that decides a run; stored in [`History`] so a result can be traced to it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub seed: u64,
    /// A progress line every this many batches (the tutorial: 40).
    pub log_every: usize,
    pub optimizer: AdamWConfig,
    /// fp32, tf32 or bf16 (see [`Precision`]); the CPU's default is fp32.
    #[serde(default)]
    pub precision: Precision,
    /// Batch size for validation (no gradients are kept, so it can be larger).
    #[serde(default = "default_eval_batch_size")]
    pub eval_batch_size: usize,
}

fn default_eval_batch_size() -> usize {
    128
}

impl TrainConfig {
    /// Refuses settings that cannot train, naming the argument and what is allowed; called
    /// before any long work (the CLI does it before loading data).
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 {
            bail!("--epochs 0: train for at least 1 epoch");
        }
        if self.batch_size == 0 || self.eval_batch_size == 0 {
            bail!("--batch-size 0: a batch holds at least 1 sentence");
        }
        let o = &self.optimizer;
        if !(o.lr.is_finite() && o.lr > 0.0) {
            bail!(
                "--lr {}: the learning rate must be a finite number > 0",
                o.lr
            );
        }
        if !(o.eps.is_finite() && o.eps > 0.0) {
            bail!("--eps {}: must be a finite number > 0", o.eps);
        }
        if !(o.weight_decay.is_finite() && o.weight_decay >= 0.0) {
            bail!(
                "--weight-decay {}: must be a finite number ≥ 0",
                o.weight_decay
            );
        }
        if !(o.max_grad_norm.is_finite() && o.max_grad_norm > 0.0) {
            bail!(
                "max_grad_norm {}: must be a finite number > 0",
                o.max_grad_norm
            );
        }
        Ok(())
    }

    /// The checks that need the number of batches per epoch.
    pub fn validate_steps(&self, batches_per_epoch: usize) -> Result<()> {
        let total = batches_per_epoch * self.epochs;
        if self.optimizer.warmup_steps > total {
            bail!(
                "--warmup-steps {}: the run has only {total} steps ({batches_per_epoch} batches \
                 × {} epochs)",
                self.optimizer.warmup_steps,
                self.epochs
            );
        }
        Ok(())
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 4,
            batch_size: 32,
            seed: 42,
            log_every: 40,
            optimizer: AdamWConfig::default(),
            precision: Precision::Fp32,
            eval_batch_size: default_eval_batch_size(),
        }
    }
}

/// Where progress goes: plain lines by default; the CLI draws a bar in a terminal.
pub trait Progress {
    /// A line of the tutorial's log.
    fn line(&mut self, text: &str);
    /// Called after every batch; cheap, no device sync behind it.
    fn batch_done(&mut self, _done: usize, _of: usize) {}
}

/// Prints each line at once (evcxr streams stdout while a cell runs).
pub struct PrintProgress;

impl Progress for PrintProgress {
    fn line(&mut self, text: &str) {
        println!("{text}");
        let _ = std::io::stdout().flush();
    }
}

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
}

impl History {
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    pub fn from_json(text: &str) -> Result<Self> {
        Ok(serde_json::from_str(text)?)
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

/// Seconds as `h:mm:ss`, the way the tutorial prints elapsed time.
pub fn clock(seconds: f64) -> String {
    let s = seconds.round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// A checkpoint continues only the run it came from: same settings, same data shape.
fn same_run(saved: &History, now: &History) -> Result<()> {
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
    if key(saved) != key(now) {
        bail!(
            "it was made by a run with other settings (saved: {}; now: {}); start afresh \
             without --resume, or resume with the same arguments",
            key(saved),
            key(now)
        );
    }
    Ok(())
}

/// Reads losses back from the device and fails on the first non-finite one.
fn read_losses(losses: &[Tensor], first_step: usize) -> Result<Vec<f64>> {
    if losses.is_empty() {
        return Ok(Vec::new());
    }
    let values: Vec<f64> = Vec::try_from(Tensor::stack(losses, 0).to_kind(tch::Kind::Double))?;
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        bail!(
            "training diverged: the loss at step {} (1-based, counting all epochs) is {}; try a \
             lower learning rate",
            first_step + i + 1,
            values[i]
        );
    }
    Ok(values)
}

/// Where a run keeps its per-epoch checkpoints, and whether it continues from the newest.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    pub dir: std::path::PathBuf,
    /// Continue from the newest complete checkpoint in `dir` (a fresh run when there is none);
    /// when false, old checkpoints there are removed first.
    pub resume: bool,
}

/// Fine-tunes `model` on `train` and scores `val` after every epoch.
pub fn train(
    model: &BertForSequenceClassification,
    train: &EncodedSet,
    val: &EncodedSet,
    config: &TrainConfig,
    progress: &mut dyn Progress,
) -> Result<History> {
    train_with_checkpoints(model, train, val, config, None, progress)
}

/// [`train`], writing a checkpoint after every epoch into `checkpoints.dir` and, with
/// `resume`, continuing from the newest one there: the result is the same as a run that was
/// never interrupted (same batches, same dropout, same losses).
pub fn train_with_checkpoints(
    model: &BertForSequenceClassification,
    train: &EncodedSet,
    val: &EncodedSet,
    config: &TrainConfig,
    checkpoints: Option<&Checkpoints>,
    progress: &mut dyn Progress,
) -> Result<History> {
    crate::device::ensure_cuda_backend();
    if train.is_empty() {
        bail!("the training set is empty");
    }
    config.validate()?;
    config.validate_steps(train.num_batches(config.batch_size))?;
    let positions = model.config.max_position_embeddings as usize;
    if train.max_len > positions {
        bail!(
            "max_len {} is longer than the model's {positions} position embeddings",
            train.max_len
        );
    }
    let device = model.vs.device();
    let per_epoch = train.num_batches(config.batch_size);
    let mut optimizer = AdamW::new(&model.vs, config.optimizer, per_epoch * config.epochs)?;
    config.precision.apply(device)?;
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
    };
    let (mut padded, mut positions) = (0.0, 0usize);
    let mut first_epoch = 1;
    let mut seconds_before = 0.0;
    if let Some(ck) = checkpoints {
        let newest = if ck.resume {
            checkpoint::newest(&ck.dir)?
        } else {
            checkpoint::clear(&ck.dir)?;
            None
        };
        if let Some(dir) = newest {
            let state = checkpoint::load(&dir, model, &mut optimizer)?;
            same_run(&state.history, &history)
                .with_context(|| format!("cannot resume from {}", dir.display()))?;
            progress.line(&format!(
                "Resuming after epoch {} of {} from {}",
                state.epochs_done,
                config.epochs,
                dir.display()
            ));
            first_epoch = state.epochs_done + 1;
            seconds_before = state.history.total_seconds;
            (padded, positions) = (state.padded_positions, state.positions);
            history = state.history;
        }
    }
    let start = Instant::now();
    for epoch in first_epoch..=config.epochs {
        // Each epoch draws from generators seeded by (seed, epoch), so a resumed run
        // shuffles and drops out exactly as the uninterrupted one.
        let seed = epoch_seed(config.seed, epoch);
        let mut rng = StdRng::seed_from_u64(seed);
        crate::device::manual_seed(seed);
        progress.line("");
        progress.line(&format!(
            "======== Epoch {epoch} / {} ========",
            config.epochs
        ));
        progress.line("Training...");
        let t0 = Instant::now();
        let first_step = history.batch_losses.len();
        let mut pending: Vec<Tensor> = Vec::with_capacity(per_epoch);
        let batches = train.batches(
            config.batch_size,
            train.training_sampler(),
            &mut rng,
            device,
        );
        let epoch_positions: usize = batches.iter().map(|b| b.positions).sum();
        padded += data::padded_share(&batches) * epoch_positions as f64;
        positions += epoch_positions;
        for (i, batch) in batches.iter().enumerate() {
            if i > 0 && i % config.log_every.max(1) == 0 {
                // The one sync per log line: also where a diverged loss is caught.
                read_losses(&pending, first_step)?;
                progress.line(&format!(
                    "  Batch {i:>5}  of  {per_epoch:>5}.    Elapsed: {}.",
                    clock(t0.elapsed().as_secs_f64())
                ));
            }
            pending.push(training_step(
                model,
                batch,
                &mut optimizer,
                config.precision,
            )?);
            progress.batch_done(i + 1, per_epoch);
        }
        let losses = read_losses(&pending, first_step)?;
        let train_seconds = t0.elapsed().as_secs_f64();
        let train_loss = losses.iter().sum::<f64>() / losses.len().max(1) as f64;
        history.batch_losses.extend(&losses);
        progress.line("");
        progress.line(&format!("  Average training loss: {train_loss:.2}"));
        progress.line(&format!("  Training epoch took: {}", clock(train_seconds)));

        progress.line("");
        progress.line("Running Validation...");
        let t1 = Instant::now();
        let scored = eval::predict_with(model, val, config.eval_batch_size, config.precision)?;
        let val_seconds = t1.elapsed().as_secs_f64();
        progress.line(&format!("  Accuracy: {:.2}", scored.accuracy()));
        progress.line(&format!("  Validation Loss: {:.2}", scored.loss));
        progress.line(&format!("  Validation took: {}", clock(val_seconds)));
        history.epochs.push(EpochStats {
            epoch,
            train_loss,
            train_seconds,
            sentences_per_second: train.len() as f64 / train_seconds.max(1e-9),
            val_loss: scored.loss,
            val_accuracy: scored.accuracy(),
            val_mcc: scored.mcc(),
            val_seconds,
        });
        history.total_seconds = seconds_before + start.elapsed().as_secs_f64();
        if let Some(ck) = checkpoints {
            let state = checkpoint::TrainState {
                epochs_done: epoch,
                steps_done: optimizer.steps_done(),
                padded_positions: padded,
                positions,
                history: history.clone(),
            };
            let dir = checkpoint::save(&ck.dir, model, &optimizer, &state)?;
            progress.line(&format!("  Checkpoint: {}", dir.display()));
        }
    }
    history.total_seconds = seconds_before + start.elapsed().as_secs_f64();
    history.padded_share = if positions == 0 {
        0.0
    } else {
        padded / positions as f64
    };
    progress.line("");
    progress.line("Training complete!");
    progress.line(&format!(
        "Total training took {} (h:mm:ss)",
        clock(history.total_seconds)
    ));
    Ok(history)
}
