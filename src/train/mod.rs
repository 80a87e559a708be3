//! Training, in the pieces the tutorial's loop is made of: [`training_step`] (one batch),
//! [`EpochLosses`] (the losses of an epoch, kept on the device until a log line reads them),
//! [`History`] (what the run did, epoch by epoch) and [`epoch_seed`] (the seeding of each
//! epoch). [`train`] puts them together for the CLI; the notebook writes the same loop in a
//! cell and hands it to a background [`Run`].
//!
//! Losses stay on the device while training runs and are read back only when a progress line
//! is printed or an epoch ends, so a GPU is never stalled once per step just to log. A
//! non-finite loss stops training at the next read with an error naming the step.

pub mod checkpoint;
mod run;
mod step;

pub use checkpoint::epoch_seed;
pub use run::{Control, Run, RunProgress};
pub use step::training_step;

use std::fmt;
use std::io::Write;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

use crate::data::{self, Batch, EncodedSet};
use crate::display::{clock, Html, Rich, Table};
use crate::eval::{self, Predictions};
use crate::model::BertForSequenceClassification;
use crate::optim::{AdamWConfig, FusedAdamW, LinearSchedule};
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
    /// naming its step); returns the tutorial's summary lines. A stopped epoch's partial
    /// losses are kept too.
    pub fn record_training(&mut self, mut losses: EpochLosses) -> Result<String> {
        let values = losses.read()?.to_vec();
        let train_seconds = losses.started.elapsed().as_secs_f64();
        let train_loss = values.iter().sum::<f64>() / values.len().max(1) as f64;
        self.batch_losses.extend(&values);
        self.padded_positions += losses.padded_positions;
        self.positions += losses.positions;
        if self.positions > 0 {
            self.padded_share = self.padded_positions / self.positions as f64;
        }
        self.open_epoch = Some(EpochStats {
            epoch: losses.epoch,
            train_loss,
            train_seconds,
            sentences_per_second: losses.sentences as f64 / train_seconds.max(1e-9),
            val_loss: f64::NAN,
            val_accuracy: f64::NAN,
            val_mcc: f64::NAN,
            val_seconds: 0.0,
        });
        self.total_seconds = self.seconds_so_far();
        Ok(format!(
            "\n  Average training loss: {train_loss:.2}\n  Training epoch took: {}",
            clock(train_seconds)
        ))
    }

    /// Completes the epoch [`History::record_training`] opened with its validation scores;
    /// returns the tutorial's validation lines.
    pub fn record_validation(&mut self, scored: &Predictions) -> Result<String> {
        let Some(mut stats) = self.open_epoch.take() else {
            bail!("record_training must come before record_validation in each epoch");
        };
        stats.val_loss = scored.loss;
        stats.val_accuracy = scored.accuracy();
        stats.val_mcc = scored.mcc();
        stats.val_seconds = scored.seconds;
        self.epochs.push(stats);
        self.total_seconds = self.seconds_so_far();
        Ok(format!(
            "  Accuracy: {:.2}\n  Validation Loss: {:.2}\n  Validation took: {}",
            scored.accuracy(),
            scored.loss,
            clock(scored.seconds)
        ))
    }

    /// The closing lines of a run.
    pub fn summary(&self) -> String {
        format!(
            "\nTraining complete!\nTotal training took {} (h:mm:ss)",
            clock(self.total_seconds)
        )
    }

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

/// The losses of one epoch's batches: kept on the device as the steps return them, read back
/// (one host sync) only when a log line or the end of the epoch needs them.
pub struct EpochLosses {
    epoch: usize,
    /// Steps taken before this epoch, to name a diverged step by its run-wide number.
    first_step: usize,
    batches: usize,
    sentences: usize,
    padded_positions: f64,
    positions: usize,
    pending: Vec<Tensor>,
    read: Vec<f64>,
    started: Instant,
}

impl EpochLosses {
    /// Starts epoch `epoch` (1-based) of `history` over `batches`; its clock starts now.
    pub fn new(history: &History, epoch: usize, batches: &[Batch]) -> Self {
        let positions: usize = batches.iter().map(|b| b.positions).sum();
        EpochLosses {
            epoch,
            first_step: history.batch_losses.len(),
            batches: batches.len(),
            sentences: batches.iter().map(Batch::len).sum(),
            padded_positions: data::padded_share(batches) * positions as f64,
            positions,
            pending: Vec::with_capacity(batches.len()),
            read: Vec::new(),
            started: Instant::now(),
        }
    }

    /// The loss of the next batch, as [`training_step`] returned it.
    pub fn push(&mut self, loss: Tensor) {
        self.pending.push(loss);
    }

    /// Every loss so far, read back in one copy; the first non-finite one is an error naming
    /// its step.
    pub fn read(&mut self) -> Result<&[f64]> {
        if !self.pending.is_empty() {
            let values: Vec<f64> =
                Vec::try_from(Tensor::stack(&self.pending, 0).to_kind(tch::Kind::Double))?;
            self.pending.clear();
            let at = self.first_step + self.read.len();
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                bail!(
                    "training diverged: the loss at step {} (1-based, counting all epochs) is \
                     {}; try a lower learning rate",
                    at + i + 1,
                    values[i]
                );
            }
            self.read.extend(values);
        }
        Ok(&self.read)
    }

    /// The tutorial's progress line after `done` batches; reads the losses (so a diverged
    /// loss stops the run here, not at the end of the epoch).
    pub fn progress_line(&mut self, done: usize) -> Result<String> {
        self.read()?;
        Ok(format!(
            "  Batch {done:>5}  of  {:>5}.    Elapsed: {}.",
            self.batches,
            clock(self.started.elapsed().as_secs_f64())
        ))
    }

    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// Batches in this epoch.
    pub fn batches(&self) -> usize {
        self.batches
    }

    /// Losses read back so far (see [`EpochLosses::read`]).
    pub fn read_so_far(&self) -> &[f64] {
        &self.read
    }
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
    check_before_training(model, train, config)?;
    let device = model.vs.device();
    let per_epoch = train.num_batches(config.batch_size);
    let mut optimizer = FusedAdamW::new(&model.vs, config.optimizer)?;
    let mut scheduler = LinearSchedule::new(
        &mut optimizer,
        config.optimizer.warmup_steps,
        per_epoch * config.epochs,
    );
    config.precision.apply(device)?;
    let mut history = History::new(config, train, val, device);
    if let Some(ck) = checkpoints {
        let newest = if ck.resume {
            checkpoint::newest(&ck.dir)?
        } else {
            checkpoint::clear(&ck.dir)?;
            None
        };
        if let Some(dir) = newest {
            let mut saved = checkpoint::load(&dir, model, &mut optimizer, &mut scheduler)?;
            same_run(&saved, &history)
                .with_context(|| format!("cannot resume from {}", dir.display()))?;
            progress.line(&format!(
                "Resuming after epoch {} of {} from {}",
                saved.epochs.len(),
                config.epochs,
                dir.display()
            ));
            saved.restart_clock();
            history = saved;
        }
    }
    for epoch in history.epochs.len() + 1..=config.epochs {
        progress.line(&format!(
            "\n======== Epoch {epoch} / {} ========\nTraining...",
            config.epochs
        ));
        train_epoch(
            model,
            train,
            epoch,
            config,
            (&mut optimizer, &mut scheduler),
            &mut history,
            progress,
        )?;
        progress.line("\nRunning Validation...");
        let scored = eval::evaluate(model, val, config.eval_batch_size, config.precision)?;
        progress.line(&history.record_validation(&scored)?);
        if let Some(ck) = checkpoints {
            let dir = checkpoint::save(&ck.dir, model, &optimizer, &scheduler, &history)?;
            progress.line(&format!("  Checkpoint: {}", dir.display()));
        }
    }
    progress.line(&history.summary());
    Ok(history)
}

/// One epoch of training, filed in `history`: the epoch's seed (see [`epoch_seed`]) draws its
/// batch order and dropout masks, every batch takes one [`training_step`], a progress line
/// comes every `config.log_every` batches. Validation is the caller's next step.
pub fn train_epoch(
    model: &BertForSequenceClassification,
    train: &EncodedSet,
    epoch: usize,
    config: &TrainConfig,
    (optimizer, scheduler): (&mut FusedAdamW, &mut LinearSchedule),
    history: &mut History,
    progress: &mut dyn Progress,
) -> Result<()> {
    // Drawn from (seed, epoch) alone, so a resumed run trains exactly as the uninterrupted one.
    let seed = epoch_seed(config.seed, epoch);
    crate::device::manual_seed(seed);
    let batches = train.batches(
        config.batch_size,
        train.training_sampler(seed),
        model.vs.device(),
    );
    let mut losses = EpochLosses::new(history, epoch, &batches);
    for (i, batch) in batches.iter().enumerate() {
        if i > 0 && i % config.log_every.max(1) == 0 {
            progress.line(&losses.progress_line(i)?);
        }
        losses.push(training_step(
            model,
            batch,
            optimizer,
            scheduler,
            config.precision,
        )?);
        progress.batch_done(i + 1, batches.len());
    }
    progress.line(&history.record_training(losses)?);
    Ok(())
}

/// The checks a run needs before any long work: settings, a non-empty set, sequences the
/// model's position embeddings can hold.
pub fn check_before_training(
    model: &BertForSequenceClassification,
    train: &EncodedSet,
    config: &TrainConfig,
) -> Result<()> {
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
    Ok(())
}
