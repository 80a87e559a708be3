//! [`Trainer`]: the one definition of a fine-tuning run. It owns the model, the optimizer, the
//! schedule, the precision, the history and the checkpoint policy; the CLI, the notebook, the
//! bench, the background [`super::Run`] and the tests all drive it.
//!
//! Read top to bottom, [`Trainer::fit`] is the tutorial's loop: for each epoch,
//! [`Trainer::start_epoch`] (seed the epoch, draw its batches), [`Trainer::step`] per batch,
//! [`Trainer::finish_epoch`], [`Trainer::validate`], [`Trainer::save_checkpoint`]. A notebook
//! cell can write that loop itself from the same calls, so what runs is what the reader sees.
//!
//! A step issues no device-to-host copy: losses stay on the device until a progress line or
//! the end of the epoch reads them (see [`EpochLosses`]).

use std::borrow::Borrow;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use tch::Tensor;

use super::config::metric_key;
use super::epoch::EpochBatches;
use super::events::{Event, EventSink, PrintLines};
use super::losses::EpochLosses;
use super::{check_sequence_length, checkpoint, epoch_seed, History, TrainConfig};
use crate::data::ProblemType;
use crate::data::{shard, Batch, EncodedSet, Labels};
use crate::eval::{self, Evaluation};
use crate::model::{heads, BertForSequenceClassification, TaskModel};
use crate::optim::{FusedAdamW, LinearSchedule, LossScaler};
use crate::runtime::device;
use crate::runtime::distributed::ProcessGroup;
use crate::runtime::precision::Precision;

/// Where a run keeps its per-epoch checkpoints, and whether it continues from the newest.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    pub dir: PathBuf,
    /// Continue from the newest complete checkpoint in `dir` (a fresh run when there is none);
    /// when false, old checkpoints there are removed first.
    pub resume: bool,
}

/// A fine-tuning run; see the module documentation. `M` is the model with its task head
/// (sequence classification unless said otherwise; any [`TaskModel`]).
pub struct Trainer<M: TaskModel = BertForSequenceClassification> {
    model: M,
    config: TrainConfig,
    /// Shared with the open epoch's [`EpochBatches`], which build their batches from it.
    train: Arc<EncodedSet>,
    val: EncodedSet,
    optimizer: FusedAdamW,
    schedule: LinearSchedule,
    history: History,
    /// Checkpoint folder (`save_checkpoint` writes there; `fit` after every epoch).
    checkpoints: Option<PathBuf>,
    /// The epoch being trained: between `start_epoch` and `finish_epoch`.
    open: Option<EpochLosses>,
    sink: Box<dyn EventSink>,
    /// The head's problem type (from the model's config): which loss a step takes.
    problem: ProblemType,
    /// `config.class_weights` on the device.
    class_weights: Option<Tensor>,
    /// Batches whose gradients are summed since the last optimizer step.
    accumulated: usize,
    /// A copy of the weights of the best evaluation (`metric_for_best_model`).
    best_weights: Option<Vec<(String, Tensor)>>,
    /// The other ranks of a data-parallel run ([`Trainer::with_process_group`]).
    group: Option<ProcessGroup>,
}

/// The sink of a rank other than 0: rank 0 alone tells the world.
struct Quiet;

impl EventSink for Quiet {
    fn on_event(&mut self, _event: &Event<'_>, _history: &History) {}
}

/// What `labels` are, in words, for an error.
fn describe(labels: &Labels) -> &'static str {
    match labels {
        Labels::Classes(_) => "class ids",
        Labels::Values(_) => "values (regression)",
        Labels::MultiHot(_) => "label indicators (multi-label)",
        Labels::Tags(_) => "tags per token (token classification)",
        Labels::Spans(_) => "answer spans (question answering)",
        Labels::Tokens(_) | Labels::ToMask(_) => "masked tokens (masked language modelling)",
    }
}

/// Labels of `set` fit a head of `num_labels` outputs for `problem`.
fn check_labels(
    what: &str,
    set: &EncodedSet,
    problem: ProblemType,
    num_labels: usize,
) -> Result<()> {
    if set.labels.problem_type() != problem {
        bail!(
            "the {what} set's labels are {} but the model's head is {} (problem_type in its \
             config.json)",
            describe(&set.labels),
            problem.name()
        );
    }
    match &set.labels {
        Labels::Classes(c) => {
            if let Some(&bad) = c.iter().find(|&&c| c < 0 || c as usize >= num_labels) {
                bail!("the {what} set holds class id {bad}; the model's head has {num_labels} classes");
            }
        }
        Labels::Values(v) => {
            if num_labels != 1 {
                bail!("a regression head has 1 output; this model's has {num_labels}");
            }
            if let Some(bad) = v.iter().find(|x| !x.is_finite()) {
                bail!("the {what} set holds the value {bad}; a regression needs finite values");
            }
        }
        Labels::MultiHot(rows) => {
            if let Some(row) = rows.iter().find(|r| r.len() != num_labels) {
                bail!(
                    "the {what} set has rows of {} labels; the model's head has {num_labels}",
                    row.len()
                );
            }
        }
        Labels::Spans(spans) => {
            if let Some(bad) = spans.iter().find(|(s, e)| *s < 0 || e < s) {
                bail!("the {what} set holds the answer span {bad:?}: a start before its end, both 0 or more");
            }
        }
        Labels::ToMask(_) => {}
        Labels::Tokens(rows) => {
            let ignore = crate::data::tagging::IGNORE_INDEX;
            if let Some(&bad) = rows.iter().flatten().find(|&&t| t != ignore && t < 0) {
                bail!("the {what} set holds the token id {bad} as a masked token's label");
            }
        }
        Labels::Tags(rows) => {
            let ignore = crate::data::tagging::IGNORE_INDEX;
            if let Some(&bad) = rows
                .iter()
                .flatten()
                .find(|&&t| t != ignore && (t < 0 || t as usize >= num_labels))
            {
                bail!("the {what} set holds tag id {bad}; the model's head has {num_labels} tags");
            }
        }
    }
    Ok(())
}

/// The metrics an evaluation of `problem` reports (see `Evaluation::metrics`).
fn metrics_of(problem: ProblemType, num_labels: usize) -> Vec<&'static str> {
    match problem {
        ProblemType::SingleLabelClassification if num_labels == 2 => {
            vec!["loss", "accuracy", "mcc", "macro_f1", "f1"]
        }
        ProblemType::SingleLabelClassification => vec!["loss", "accuracy", "mcc", "macro_f1"],
        ProblemType::Regression => vec!["loss", "mse", "pearson", "spearmanr"],
        ProblemType::MultiLabelClassification => {
            vec!["loss", "micro_f1", "macro_f1", "subset_accuracy"]
        }
        ProblemType::TokenClassification => vec!["loss", "precision", "recall", "f1", "accuracy"],
        ProblemType::QuestionAnswering => vec!["loss", "span_accuracy"],
        ProblemType::MaskedLanguageModeling => vec!["loss", "perplexity", "accuracy"],
    }
}

impl<M: TaskModel> Trainer<M> {
    /// A run of `config` fine-tuning `model` on `train`, validated on `val` after every
    /// epoch. Every check a run needs comes first (the settings, a non-empty training set,
    /// sequences the position embeddings hold, warm-up within the run), then the optimizer
    /// and schedule are built and the precision is applied (TF32 is a libtorch-wide switch).
    pub fn new(model: M, config: TrainConfig, train: EncodedSet, val: EncodedSet) -> Result<Self> {
        device::ensure_cuda_backend();
        if train.is_empty() {
            bail!("the training set is empty");
        }
        config.validate()?;
        let per_epoch = train.num_batches(config.batch_size);
        let mut config = config;
        config.epochs = config.epochs_for(per_epoch);
        config.validate_steps(per_epoch)?;
        check_sequence_length(train.max_len, model.bert_config())?;
        let problem = model.problem_type()?;
        let num_labels = model.bert_config().num_labels();
        check_labels("training", &train, problem, num_labels)?;
        check_labels("validation", &val, problem, num_labels)?;
        if let Some(metric) = &config.metric_for_best_model {
            let reported = metrics_of(problem, num_labels);
            if !reported.contains(&metric_key(metric)) {
                return Err(super::ConfigError {
                    field: "metric_for_best_model",
                    value: metric.clone(),
                    reason: format!("a {} run reports {}", problem.name(), reported.join(", ")),
                }
                .into());
            }
        }
        let device = model.var_store().device();
        let class_weights = match &config.class_weights {
            None => None,
            Some(w) => {
                if problem != ProblemType::SingleLabelClassification || w.len() != num_labels {
                    return Err(super::ConfigError {
                        field: "class_weights",
                        value: format!("{w:?}"),
                        reason: format!(
                            "give one weight per class of a single-label head ({num_labels} \
                             outputs, {})",
                            problem.name()
                        ),
                    }
                    .into());
                }
                let w: Vec<f32> = w.iter().map(|&x| x as f32).collect();
                Some(Tensor::from_slice(&w).to_device(device))
            }
        };
        let mut optimizer = FusedAdamW::new(model.var_store(), config.optimizer)?;
        if config.precision == Precision::Fp16 {
            optimizer.set_loss_scaler(Some(LossScaler::new(config.loss_scale, device)?));
        }
        let schedule = LinearSchedule::new(
            &mut optimizer,
            config.optimizer.warmup_steps,
            config.total_steps(per_epoch),
        );
        config.precision.apply(device)?;
        // A masked-LM validation set is masked once, from the run's seed, so every validation
        // scores the same masks and its perplexities compare from epoch to epoch.
        let val = if val.masking.is_some() {
            val.masked(config.seed)
        } else {
            val
        };
        let history = History::new(&config, &train, &val, device);
        Ok(Trainer {
            model,
            config,
            train: Arc::new(train),
            val,
            optimizer,
            schedule,
            history,
            checkpoints: None,
            open: None,
            sink: Box::new(PrintLines),
            problem,
            class_weights,
            accumulated: 0,
            best_weights: None,
            group: None,
        })
    }

    /// Makes this trainer one rank of a data-parallel run (DistributedDataParallel's scheme):
    /// every rank starts from rank 0's weights (broadcast now, in one collective), draws its
    /// share of each global batch of `batch_size × world_size` rows from the same sampler
    /// order (bucketing included), and averages the gradients over the ranks (one all-reduce
    /// per optimizer step, whatever the number of tensors) before clipping and AdamW, so the
    /// weights stay identical everywhere. Rank 0 alone sends events and writes checkpoints;
    /// validation is sharded over the ranks and gathered, so every rank sees the same figures.
    ///
    /// It rebuilds the schedule for the global steps, so call it before
    /// [`Trainer::with_checkpoints`] / [`Trainer::resume_from`], which restore the schedule's
    /// position.
    pub fn with_process_group(mut self, group: ProcessGroup) -> Result<Self> {
        let params: Vec<Tensor> = self
            .optimizer
            .parameters()
            .iter()
            .map(Tensor::shallow_clone)
            .collect();
        let flat = Tensor::cat(
            &params
                .iter()
                .map(|p| p.detach().reshape([-1]))
                .collect::<Vec<_>>(),
            0,
        );
        group.broadcast(&flat, 0)?;
        tch::no_grad(|| -> Result<()> {
            let mut offset = 0;
            for p in &params {
                let n = p.numel() as i64;
                p.shallow_clone()
                    .f_copy_(&flat.narrow(0, offset, n).reshape(p.size()))?;
                offset += n;
            }
            Ok(())
        })?;
        if !group.is_main() {
            self.sink = Box::new(Quiet);
        }
        self.group = Some(group);
        // One flat gradient buffer: one in-place all-reduce of one tensor per step.
        self.optimizer.set_flat_gradients(true)?;
        // Fewer, larger global batches: the schedule spans the steps the run will take.
        let per_epoch = self.batches_per_epoch();
        self.config.epochs = self.config.epochs_for(per_epoch);
        self.config.validate_steps(per_epoch)?;
        self.schedule = LinearSchedule::new(
            &mut self.optimizer,
            self.config.optimizer.warmup_steps,
            self.config.total_steps(per_epoch),
        );
        Ok(self)
    }

    /// The process group of a data-parallel run, if any.
    pub fn process_group(&self) -> Option<&ProcessGroup> {
        self.group.as_ref()
    }

    /// Sends events to `sink` instead of printing them.
    pub fn with_sink(mut self, sink: impl EventSink + 'static) -> Self {
        self.sink = Box::new(sink);
        self
    }

    /// Replaces the event sink, returning the previous one.
    pub fn set_sink(&mut self, sink: Box<dyn EventSink>) -> Box<dyn EventSink> {
        std::mem::replace(&mut self.sink, sink)
    }

    /// Keeps a checkpoint in `checkpoints.dir` after every epoch [`Trainer::fit`] runs (only
    /// the newest stays). With `resume`, continues from the newest one there (a fresh run
    /// when there is none); without, removes the old ones, so a later resume cannot pick up
    /// another run's.
    pub fn with_checkpoints(mut self, checkpoints: Checkpoints) -> Result<Self> {
        if checkpoints.resume {
            self.resume_from(&checkpoints.dir)?;
        } else if self.group.as_ref().is_none_or(ProcessGroup::is_main) {
            checkpoint::clear(&checkpoints.dir)?;
        }
        self.checkpoints = Some(checkpoints.dir);
        Ok(self)
    }

    /// Loads the newest complete checkpoint in `dir` (or `dir` itself when it is one):
    /// weights, optimizer moments, schedule position and history, so the run goes on exactly
    /// as if it had never stopped. Returns the epochs it holds; `None` when `dir` has none.
    ///
    /// Under data parallel every rank reads the checkpoint rank 0 wrote, so `dir` must be one
    /// folder all ranks see (one machine, or a shared file system across nodes, as for
    /// transformers' Trainer); the ranks then check, in one collective, that they all found
    /// the same checkpoint, and refuse to go on otherwise.
    pub fn resume_from(&mut self, dir: impl AsRef<Path>) -> Result<Option<usize>> {
        let dir = dir.as_ref();
        let found = if dir.join("state.json").is_file() {
            Some(dir.to_path_buf())
        } else {
            checkpoint::newest(dir)?
        };
        if let Some(group) = &self.group {
            // The epoch of the checkpoint each rank found (-1: none).
            let epoch = found
                .as_deref()
                .map_or(-1.0, |f| checkpoint::epoch_of(f).map_or(0.0, |e| e as f64));
            let all = group.all_gather(&Tensor::from_slice(&[epoch]))?;
            let all: Vec<f64> = Vec::<f64>::try_from(all.reshape([-1]))?;
            if all.iter().any(|&e| e != all[0]) {
                bail!(
                    "cannot resume from {}: the ranks found different checkpoints (the epoch \
                     each rank found, -1 for none: {all:?}; this rank found {}); every rank \
                     must see the folder rank 0 writes",
                    dir.display(),
                    found
                        .as_deref()
                        .map_or("none".into(), |f| f.display().to_string())
                );
            }
        }
        let Some(found) = found else {
            return Ok(None);
        };
        let (mut saved, best) =
            checkpoint::load(&found, &self.model, &mut self.optimizer, &mut self.schedule)?;
        saved
            .check_same_run(&self.history)
            .with_context(|| format!("cannot resume from {}", found.display()))?;
        saved.restart_clock();
        self.history = saved;
        self.best_weights = best;
        self.open = None;
        self.accumulated = 0;
        let epochs_done = self.history.epochs.len();
        self.emit(Event::Resumed {
            epochs_done,
            epochs: self.config.epochs,
            from: &found,
        });
        Ok(Some(epochs_done))
    }

    /// The whole run: every epoch not yet done is trained, validated and checkpointed (when
    /// checkpoints are kept); ends early, after the current batch, when the sink asks to
    /// stop, or after an evaluation when early stopping's patience runs out. With
    /// `metric_for_best_model`, the best evaluation's weights are loaded at the end. Returns
    /// the history.
    pub fn fit(&mut self) -> Result<History> {
        for epoch in self.remaining_epochs() {
            if !self.train_epoch(epoch)? {
                break;
            }
            self.validate()?;
            if self.checkpoints.is_some() {
                self.save_checkpoint()?;
            }
            if self.should_stop_early(epoch) {
                break;
            }
        }
        self.load_best_weights()?;
        Ok(self.finish())
    }

    /// Trains epoch `epoch`: its batches, one [`Trainer::step`] each (and an evaluation every
    /// `eval_steps` optimizer steps), then [`Trainer::finish_epoch`]. Returns false when it
    /// stopped early, on request or by early stopping.
    pub fn train_epoch(&mut self, epoch: usize) -> Result<bool> {
        let batches = self.start_epoch(epoch)?;
        let mut patience_out = false;
        for (i, batch) in batches.iter().enumerate() {
            let batch = &batch;
            if self.stop_requested() {
                break;
            }
            let _loss_on_the_device = self.step(batch)?;
            let stepped = self.accumulated == 0;
            if stepped
                && self
                    .config
                    .max_steps
                    .is_some_and(|m| self.global_step() >= m)
            {
                break; // max_steps reached: this is the last epoch, cut short
            }
            let last = i + 1 == batches.len();
            let due = self
                .config
                .eval_steps
                .is_some_and(|n| self.global_step().is_multiple_of(n));
            if stepped && due && !last {
                let fraction = (i + 1) as f64 / batches.len() as f64;
                self.evaluate_at(epoch - 1, fraction)?;
                if self.should_stop_early(epoch) {
                    patience_out = true;
                    break;
                }
            }
        }
        self.finish_epoch()?;
        Ok(!self.stop_requested() && !patience_out)
    }

    /// A mid-epoch evaluation of the validation set, `fraction` of the way into the epoch
    /// after `epochs_done`: filed in the history, the weights kept when it is the best.
    fn evaluate_at(&mut self, epochs_done: usize, fraction: f64) -> Result<()> {
        let scored = self.evaluate(&self.val, self.config.eval_batch_size)?;
        let step = self.global_step();
        let best = self
            .history
            .record_evaluation(step, epochs_done as f64 + fraction, &scored)?;
        if best {
            self.keep_best_weights();
        }
        if let Some(record) = self.history.evaluations.last() {
            self.sink
                .on_event(&Event::Evaluated { record, best }, &self.history);
        }
        Ok(())
    }

    fn keep_best_weights(&mut self) {
        self.best_weights = Some(
            self.model
                .parameters()
                .into_iter()
                .map(|(name, t)| (name, t.detach().copy()))
                .collect(),
        );
    }

    /// True (and said, once) when early stopping's patience has run out.
    fn should_stop_early(&mut self, epoch: usize) -> bool {
        if !self.history.patience_exhausted() {
            return false;
        }
        if !self.history.stopped_early {
            self.history.stopped_early = true;
            if let Some(best) = &self.history.best {
                self.sink.on_event(
                    &Event::StoppedEarly {
                        epoch,
                        evaluations: self.history.evaluations_without_improvement,
                        best,
                    },
                    &self.history,
                );
            }
        }
        true
    }

    /// Puts the weights of the best evaluation back into the model (`metric_for_best_model`
    /// set and an evaluation made); a no-op otherwise. [`Trainer::fit`] calls it at the end.
    pub fn load_best_weights(&mut self) -> Result<()> {
        let (Some(weights), Some(best)) = (&self.best_weights, &self.history.best) else {
            return Ok(());
        };
        let params: std::collections::HashMap<String, Tensor> =
            self.model.parameters().into_iter().collect();
        tch::no_grad(|| -> Result<()> {
            for (name, saved) in weights {
                let Some(mut p) = params.get(name).map(Tensor::shallow_clone) else {
                    bail!("the best weights hold {name}, which the model lacks");
                };
                p.f_copy_(saved)?;
            }
            Ok(())
        })?;
        self.sink
            .on_event(&Event::BestLoaded { best }, &self.history);
        Ok(())
    }

    /// The epochs still to train: all of them for a fresh run, those after the checkpoint
    /// for a resumed one.
    pub fn remaining_epochs(&self) -> RangeInclusive<usize> {
        self.history.epochs.len() + 1..=self.config.epochs
    }

    /// Opens epoch `epoch` (1-based, the next one due): seeds the generators from the run's
    /// seed and the epoch's number alone (see [`epoch_seed`]), so a resumed run draws exactly
    /// what the uninterrupted one drew, and returns the epoch's batches in the training
    /// sampler's order, on the model's device.
    pub fn start_epoch(&mut self, epoch: usize) -> Result<EpochBatches> {
        let due = self.history.epochs.len() + 1;
        if self.open.is_some() {
            bail!("epoch {epoch} cannot start: the epoch before it is still open (finish_epoch)");
        }
        if epoch != due || epoch > self.config.epochs {
            bail!(
                "epoch {epoch} cannot start: the next epoch due is {due} of {}",
                self.config.epochs
            );
        }
        self.emit(Event::EpochStarted {
            epoch,
            epochs: self.config.epochs,
        });
        let seed = epoch_seed(self.config.seed, epoch);
        device::manual_seed(seed); // this epoch's dropout masks
        let sampler = self.train.training_sampler(seed);
        let device = self.model.var_store().device();
        // Each batch is built when the loop reaches it; masked language modelling masks its
        // rows then, afresh each epoch, from the epoch's seed.
        let rows = match &self.group {
            None => self.train.batch_rows(self.config.batch_size, sampler),
            Some(group) => {
                let (rank, world) = (group.rank(), group.world_size());
                self.train
                    .batch_rows(self.config.batch_size * world, sampler)
                    .iter()
                    .map(|global| shard(global, rank, world))
                    .collect()
            }
        };
        let batches = EpochBatches::new(self.train.clone(), rows, seed, device);
        self.open = Some(EpochLosses::new(
            epoch,
            self.history.batch_losses.len(),
            &batches,
        ));
        Ok(batches)
    }

    /// One optimizer step on `batch`, line for line the body of the tutorial's loop: clear the
    /// gradients, forward with dropout (in autocast under bf16; the logits are cast to
    /// float32 before the loss of the head's problem type), backward, clip to
    /// `max_grad_norm`, AdamW, advance the schedule. Returns the detached loss, still on the
    /// device.
    ///
    /// With `gradient_accumulation_steps` k > 1 a step is one batch of a group of k: the
    /// gradients are cleared at the group's first batch, each loss is divided by the group's
    /// size before backward, and the optimizer steps after its last batch (an epoch's last
    /// group may be shorter, and is divided by its own size).
    ///
    /// Inside an epoch the loss is filed, and every `log_every` steps the losses are read
    /// back for a progress line (a diverged loss stops the run there). Outside one (the bench)
    /// the step is just timed work.
    pub fn step(&mut self, batch: impl Borrow<Batch>) -> Result<Tensor> {
        let batch = batch.borrow();
        let device = self.model.var_store().device();
        let k = self.config.gradient_accumulation_steps.max(1);
        let group = match &self.open {
            Some(open) => {
                let start = open.done() / k * k;
                k.min(open.batches() - start)
            }
            None => k,
        };
        if self.accumulated == 0 {
            self.optimizer.zero_grad()?;
        }
        let (logits, labels) = {
            let _autocast = self.config.precision.autocast(device)?;
            self.model.scored_logits(batch, true) // dropout on
        };
        let loss =
            heads::weighted_loss(self.problem, &logits, &labels, self.class_weights.as_ref())?;
        // fp16: backward from the loss times the loss scale (the loss itself is what is kept).
        let scaled = self.optimizer.scale_loss(&loss);
        if group > 1 {
            (&scaled / group as f64).f_backward()?;
        } else {
            scaled.f_backward()?;
        }
        self.accumulated += 1;
        if self.accumulated >= group {
            if let Some(ranks) = &self.group {
                // One collective on the flat gradient buffer; the division by the world size
                // happens inside the AdamW kernel, with the clipping.
                ranks.all_reduce_sum(&[self.optimizer.flat_gradients()?])?;
                self.optimizer.gradients_summed_over(ranks.world_size());
            }
            // fp16: unscale before clipping; an inf or NaN skips the optimizer and schedule
            // step (GradScaler.step, and the Trainer's `optimizer_was_run`).
            if self.optimizer.unscale_gradients()? {
                let step = self.global_step() + 1;
                let scale = self.optimizer.loss_scaler().map_or(f64::NAN, |s| s.scale());
                self.history.skipped_steps.push(step);
                self.sink
                    .on_event(&Event::StepSkipped { step, scale }, &self.history);
            } else {
                let _norm_before_clipping = self.optimizer.clip_grad_norm()?;
                self.optimizer.step()?;
                self.schedule.step(&mut self.optimizer);
            }
            self.optimizer.update_loss_scale()?;
            self.accumulated = 0;
        }
        let loss = loss.detach();
        if let Some(open) = self.open.as_mut() {
            open.push(loss.shallow_clone());
            let (epoch, done, of) = (open.epoch(), open.done(), open.batches());
            if done % self.config.log_every == 0 && done < of {
                let elapsed_seconds = open.elapsed_seconds();
                let losses = open.read()?;
                self.sink.on_event(
                    &Event::Progress {
                        epoch,
                        done,
                        of,
                        elapsed_seconds,
                        losses,
                    },
                    &self.history,
                );
            }
            self.sink
                .on_event(&Event::BatchDone { epoch, done, of }, &self.history);
        }
        Ok(loss)
    }

    /// Optimizer steps so far, skipped fp16 steps included (transformers' `global_step`; the
    /// schedule counts only the steps taken).
    pub fn global_step(&self) -> usize {
        self.schedule.steps_done() + self.history.skipped_steps.len()
    }

    /// Closes the open epoch: reads its losses back (a non-finite one is an error naming its
    /// step) and files them in the history.
    pub fn finish_epoch(&mut self) -> Result<()> {
        let Some(mut losses) = self.open.take() else {
            bail!("no epoch is open (start_epoch first)");
        };
        if let Some(group) = &self.group {
            losses.average_over(group)?;
        }
        self.history.record_training(losses)?;
        if let Some(stats) = self.history.trained_epoch() {
            self.sink
                .on_event(&Event::EpochTrained { stats }, &self.history);
        }
        Ok(())
    }

    /// Scores the validation set after the epoch just finished and files the scores.
    pub fn validate(&mut self) -> Result<Evaluation> {
        let epoch = self.history.epochs.len() + 1;
        self.emit(Event::ValidationStarted { epoch });
        let scored = self.evaluate(&self.val, self.config.eval_batch_size)?;
        self.history.record_validation(&scored)?;
        let step = self.global_step();
        if self
            .history
            .record_evaluation(step, self.history.epochs.len() as f64, &scored)?
        {
            self.keep_best_weights();
        }
        if let Some(stats) = self.history.epochs.last() {
            self.sink
                .on_event(&Event::Validated { stats }, &self.history);
        }
        Ok(scored)
    }

    /// Runs the model over `set` in order, without dropout or gradients, in the run's
    /// precision, and scores it (see [`eval::evaluate`]). In a data-parallel run each rank
    /// scores its share and the logits are gathered, so every rank gets the whole set's
    /// figures ([`eval::evaluate_sharded`]).
    pub fn evaluate(&self, set: &EncodedSet, batch_size: usize) -> Result<Evaluation> {
        // A masked-LM set not yet masked is scored on the masks of the run's seed, as the
        // validation set is.
        let masked;
        let set = if set.masking.is_some() {
            masked = set.masked(self.config.seed);
            &masked
        } else {
            set
        };
        match &self.group {
            None => eval::evaluate(&self.model, set, batch_size, self.config.precision),
            Some(group) => {
                eval::evaluate_sharded(&self.model, set, batch_size, self.config.precision, group)
            }
        }
    }

    /// Writes a checkpoint of the epochs done into the checkpoint folder
    /// ([`Trainer::with_checkpoints`]); returns its folder.
    pub fn save_checkpoint(&mut self) -> Result<PathBuf> {
        let Some(dir) = &self.checkpoints else {
            bail!("no checkpoint folder: build the trainer with_checkpoints(...)");
        };
        if self.group.as_ref().is_some_and(|g| !g.is_main()) {
            // Rank 0 writes it; the weights here are the same.
            return Ok(checkpoint::epoch_dir(dir, self.history.epochs.len()));
        }
        let written = checkpoint::save(
            dir,
            &self.model,
            &self.optimizer,
            &self.schedule,
            &self.history,
            self.best_weights.as_deref(),
        )?;
        let epoch = self.history.epochs.len();
        self.emit(Event::CheckpointWritten {
            epoch,
            dir: &written,
        });
        Ok(written)
    }

    /// Ends the run: stops its clock, says so, and returns the history.
    pub fn finish(&mut self) -> History {
        let total_seconds = self.history.update_clock();
        self.emit(Event::Finished { total_seconds });
        self.history.clone()
    }

    /// True once the sink asked the run to stop (a background run's `stop`).
    pub fn stop_requested(&self) -> bool {
        self.sink.stop_requested()
    }

    /// Sends an event that borrows nothing of the trainer (those that do are sent in place).
    fn emit(&mut self, event: Event<'_>) {
        self.sink.on_event(&event, &self.history);
    }

    pub fn model(&self) -> &M {
        &self.model
    }

    /// The trained model, for saving or predictions; the trainer is gone.
    pub fn into_model(self) -> M {
        self.model
    }

    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    pub fn history(&self) -> &History {
        &self.history
    }

    pub fn optimizer(&self) -> &FusedAdamW {
        &self.optimizer
    }

    /// The optimizer itself, for measurements outside a run (the bench's operator count).
    pub fn optimizer_mut(&mut self) -> &mut FusedAdamW {
        &mut self.optimizer
    }

    /// Optimizer steps the schedule spans: steps per epoch × epochs.
    pub fn total_steps(&self) -> usize {
        self.config.total_steps(self.batches_per_epoch())
    }

    /// Batches each rank trains per epoch: of `batch_size` rows, or of `batch_size ×
    /// world_size` global rows in a data-parallel run.
    pub fn batches_per_epoch(&self) -> usize {
        let world = self.group.as_ref().map_or(1, ProcessGroup::world_size);
        self.train.num_batches(self.config.batch_size * world)
    }

    /// The head's problem type, which decides the loss and the metrics.
    pub fn problem_type(&self) -> ProblemType {
        self.problem
    }

    pub fn train_set(&self) -> &EncodedSet {
        &self.train
    }

    pub fn val_set(&self) -> &EncodedSet {
        &self.val
    }
}
