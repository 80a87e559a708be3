//! What a [`super::Trainer`] tells the world while it runs: one [`Event`] enum, sent to one
//! [`EventSink`]. Each event knows the tutorial's log line for it ([`Event::log_line`]), so
//! every sink prints the same text; sinks differ only in where it goes: [`PrintLines`] (the
//! notebook, the default), the CLI's progress bars, the background [`super::Run`]'s memory.

use std::io::Write;
use std::path::Path;

use super::{BestEval, EpochStats, EvalRecord, History};
use crate::runtime::display::clock;

/// One thing that happened in a run. Borrowed data: a sink copies what it keeps.
#[derive(Debug)]
pub enum Event<'a> {
    /// The run continues from a checkpoint holding `epochs_done` of `epochs` epochs.
    Resumed {
        epochs_done: usize,
        epochs: usize,
        from: &'a Path,
    },
    EpochStarted {
        epoch: usize,
        epochs: usize,
    },
    /// After every step: cheap, no device sync behind it (for progress bars).
    BatchDone {
        epoch: usize,
        done: usize,
        of: usize,
    },
    /// Every `log_every` steps: the losses of this epoch read back so far.
    Progress {
        epoch: usize,
        done: usize,
        of: usize,
        elapsed_seconds: f64,
        losses: &'a [f64],
    },
    /// The epoch's batches are done (or the run was stopped inside it).
    EpochTrained {
        stats: &'a EpochStats,
    },
    ValidationStarted {
        epoch: usize,
    },
    Validated {
        stats: &'a EpochStats,
    },
    /// An evaluation every `eval_steps` steps (inside an epoch); `best` when it is the best
    /// so far on `metric_for_best_model`.
    Evaluated {
        record: &'a EvalRecord,
        best: bool,
    },
    CheckpointWritten {
        epoch: usize,
        dir: &'a Path,
    },
    /// Early stopping: `evaluations` in a row did not improve on the best.
    StoppedEarly {
        epoch: usize,
        evaluations: usize,
        best: &'a BestEval,
    },
    /// The best evaluation's weights replaced the last ones (`metric_for_best_model`).
    BestLoaded {
        best: &'a BestEval,
    },
    /// fp16: optimizer step `step` was skipped because a gradient overflowed at loss scale
    /// `scale` (the scale is halved for the next one).
    StepSkipped {
        step: usize,
        scale: f64,
    },
    Finished {
        total_seconds: f64,
    },
}

impl Event<'_> {
    /// The tutorial's log line(s) for this event; `None` for per-batch ticks.
    pub fn log_line(&self) -> Option<String> {
        Some(match self {
            Event::Resumed {
                epochs_done,
                epochs,
                from,
            } => format!(
                "Resuming after epoch {epochs_done} of {epochs} from {}",
                from.display()
            ),
            Event::EpochStarted { epoch, epochs } => {
                format!("\n======== Epoch {epoch} / {epochs} ========\nTraining...")
            }
            Event::BatchDone { .. } => return None,
            Event::Progress {
                done,
                of,
                elapsed_seconds,
                ..
            } => format!(
                "  Batch {done:>5}  of  {of:>5}.    Elapsed: {}.",
                clock(*elapsed_seconds)
            ),
            Event::EpochTrained { stats } => format!(
                "\n  Average training loss: {:.2}\n  Training epoch took: {}",
                stats.train_loss,
                clock(stats.train_seconds)
            ),
            Event::ValidationStarted { .. } => "\nRunning Validation...".to_string(),
            // Classification prints the tutorial's line; entities and spans list their figures.
            Event::Validated { stats }
                if stats.val_accuracy.is_finite()
                    && !stats.val_metrics.contains_key("recall")
                    && !stats.val_metrics.contains_key("span_accuracy") =>
            {
                format!(
                    "  Accuracy: {:.2}\n  Validation Loss: {:.2}\n  Validation took: {}",
                    stats.val_accuracy,
                    stats.val_loss,
                    clock(stats.val_seconds)
                )
            }
            Event::Validated { stats } => format!(
                "  {}\n  Validation Loss: {:.2}\n  Validation took: {}",
                metric_list(&stats.val_metrics),
                stats.val_loss,
                clock(stats.val_seconds)
            ),
            Event::Evaluated { record, best } => format!(
                "  Step {} (epoch {:.2}): {}{}",
                record.step,
                record.epoch,
                metric_list(&record.metrics),
                if *best { "  (best so far)" } else { "" }
            ),
            Event::CheckpointWritten { dir, .. } => format!("  Checkpoint: {}", dir.display()),
            Event::StoppedEarly {
                epoch,
                evaluations,
                best,
            } => format!(
                "\nEarly stopping after epoch {epoch}: {evaluations} evaluations without \
                 improvement on {} (best {:.4} at step {})",
                best.metric, best.value, best.step
            ),
            Event::BestLoaded { best } => format!(
                "Loaded the best weights: {} {:.4} at step {} (epoch {:.2})",
                best.metric, best.value, best.step, best.epoch
            ),
            Event::StepSkipped { step, scale } => format!(
                "  Step {step} skipped: a gradient overflowed at loss scale {scale}; the scale is \
                 halved"
            ),
            Event::Finished { total_seconds } => format!(
                "\nTraining complete!\nTotal training took {} (h:mm:ss)",
                clock(*total_seconds)
            ),
        })
    }
}

/// `name value, …` in the metrics' order, the loss left out (it has its own line).
fn metric_list(metrics: &std::collections::BTreeMap<String, f64>) -> String {
    metrics
        .iter()
        .filter(|(k, _)| *k != "loss")
        .map(|(k, v)| format!("{k} {v:.4}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where a trainer's events go. `Send`, so a trainer can move to a background thread.
pub trait EventSink: Send {
    /// Called for every event, with the run's history as it stands (before a `Progress`
    /// event's losses are filed into it).
    fn on_event(&mut self, event: &Event<'_>, history: &History);

    /// True once someone asked the run to stop: the trainer ends after the current batch.
    fn stop_requested(&self) -> bool {
        false
    }
}

/// Prints each log line at once (evcxr streams stdout while a cell runs): the notebook's sink.
#[derive(Debug, Default, Clone, Copy)]
pub struct PrintLines;

impl EventSink for PrintLines {
    fn on_event(&mut self, event: &Event<'_>, _history: &History) {
        if let Some(line) = event.log_line() {
            println!("{line}");
            let _ = std::io::stdout().flush();
        }
    }
}
