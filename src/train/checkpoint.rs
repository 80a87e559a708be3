//! Training checkpoints, so that a killed run loses at most one epoch.
//!
//! After every epoch the run writes `epoch-<k>/` into its checkpoint folder: the weights
//! (`model.safetensors`, Hugging Face names), the AdamW moments and step
//! (`optimizer.safetensors`) and `state.json` (the schedule's position and the [`History`] so
//! far).
//! Nothing else is needed to continue exactly: each epoch reseeds the shuffling and dropout
//! generators from the run's seed and its own number (see [`epoch_seed`]), and the schedule
//! position is the step count.
//!
//! Writing is atomic: files go into `.epoch-<k>.partial/`, are flushed, and the folder is
//! renamed to `epoch-<k>` in one step; only then is the previous checkpoint removed. A kill at
//! any moment leaves the newest complete checkpoint readable.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::History;
use crate::model::{weights, TaskModel};
use crate::optim::{FusedAdamW, LinearSchedule};

/// What `state.json` holds besides the tensors.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TrainState {
    epochs_done: usize,
    steps_done: usize,
    history: History,
}

/// The seed of epoch `epoch` (1-based): the run's own seed for the first, so a one-epoch run
/// draws what it always drew, and a fixed mix of seed and epoch for the others.
pub fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    seed.wrapping_add((epoch as u64 - 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

pub(crate) fn epoch_dir(dir: &Path, epoch: usize) -> PathBuf {
    dir.join(format!("epoch-{epoch}"))
}

/// The epochs a checkpoint folder named by [`epoch_dir`] holds; `None` for another name.
pub(crate) fn epoch_of(folder: &Path) -> Option<usize> {
    folder
        .file_name()?
        .to_str()?
        .strip_prefix("epoch-")?
        .parse()
        .ok()
}

/// Complete checkpoints in `dir`, oldest first, as (epochs done, folder).
pub fn list(dir: impl AsRef<Path>) -> Result<Vec<(usize, PathBuf)>> {
    let dir = dir.as_ref();
    let mut found = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(anyhow!("cannot list checkpoints in {}: {e}", dir.display())),
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if let Some(k) = epoch_of(&path) {
            if path.join("state.json").is_file() {
                found.push((k, path));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// The newest complete checkpoint in `dir`, if any.
pub fn newest(dir: impl AsRef<Path>) -> Result<Option<PathBuf>> {
    Ok(list(dir)?.pop().map(|(_, path)| path))
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot flush folder {}", dir.display()))
}

/// Writes the checkpoint after the epochs `history` holds; returns its folder.
pub fn save(
    dir: impl AsRef<Path>,
    model: &impl TaskModel,
    optimizer: &FusedAdamW,
    scheduler: &LinearSchedule,
    history: &History,
    best: Option<&[(String, Tensor)]>,
) -> Result<PathBuf> {
    let dir = dir.as_ref();
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create checkpoint folder {}", dir.display()))?;
    let done = history.epochs.len();
    let state = TrainState {
        epochs_done: done,
        steps_done: scheduler.steps_done(),
        history: history.clone(),
    };
    let partial = dir.join(format!(".epoch-{done}.partial"));
    if partial.exists() {
        std::fs::remove_dir_all(&partial)
            .with_context(|| format!("cannot clear {}", partial.display()))?;
    }
    std::fs::create_dir(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    weights::save(&model.parameters(), &partial.join("model.safetensors"))?;
    #[cfg(feature = "fault-injection")]
    pause_for_tests();
    weights::save(&optimizer.state(), &partial.join("optimizer.safetensors"))?;
    if let Some(best) = best {
        weights::save(best, &partial.join(BEST_WEIGHTS))?;
    }
    crate::runtime::atomic::write(
        &partial.join("state.json"),
        serde_json::to_string_pretty(&state)?.as_bytes(),
    )?;
    sync_dir(&partial)?;
    let target = epoch_dir(dir, done);
    if target.exists() {
        std::fs::remove_dir_all(&target)
            .with_context(|| format!("cannot replace {}", target.display()))?;
    }
    std::fs::rename(&partial, &target)
        .with_context(|| format!("cannot move {} into place", target.display()))?;
    sync_dir(dir)?;
    for (k, old) in list(dir)? {
        if k != done {
            std::fs::remove_dir_all(&old)
                .with_context(|| format!("cannot remove old checkpoint {}", old.display()))?;
        }
    }
    Ok(target)
}

/// Removes every checkpoint in `dir` (a fresh run must not resume an older one by mistake).
pub fn clear(dir: &Path) -> Result<()> {
    for (_, old) in list(dir)? {
        std::fs::remove_dir_all(&old)
            .with_context(|| format!("cannot remove old checkpoint {}", old.display()))?;
    }
    Ok(())
}

/// Tensors by parameter name (the best evaluation's weights).
pub type NamedTensors = Vec<(String, Tensor)>;

/// The weights of the best evaluation so far, in a checkpoint of a run with
/// `metric_for_best_model`.
const BEST_WEIGHTS: &str = "best.safetensors";

/// Loads a checkpoint into `model`, `optimizer` and `scheduler`; returns the history it
/// holds (its clock stopped: call [`History::restart_clock`] to go on) and the best
/// evaluation's weights when it kept them.
pub fn load(
    checkpoint: impl AsRef<Path>,
    model: &impl TaskModel,
    optimizer: &mut FusedAdamW,
    scheduler: &mut LinearSchedule,
) -> Result<(History, Option<NamedTensors>)> {
    let checkpoint = checkpoint.as_ref();
    let state_file = checkpoint.join("state.json");
    let text = std::fs::read_to_string(&state_file)
        .with_context(|| format!("cannot read {}", state_file.display()))?;
    let state: TrainState = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a training state", state_file.display()))?;
    let report = weights::load(
        model.var_store(),
        &checkpoint.join("model.safetensors"),
        "the model being trained",
        model.bert_config().family()?,
    )?;
    if !report.is_clean() {
        bail!(
            "{} does not hold this model's weights: {report}",
            checkpoint.display()
        );
    }
    let file = checkpoint.join("optimizer.safetensors");
    let tensors: std::collections::HashMap<String, Tensor> = Tensor::read_safetensors(&file)
        .with_context(|| format!("cannot read {}", file.display()))?
        .into_iter()
        .map(|(n, t)| (n, t.to_device(optimizer.device())))
        .collect();
    optimizer
        .load_state(&tensors)
        .with_context(|| format!("in {}", file.display()))?;
    scheduler.resume_at(state.steps_done, optimizer);
    if state.history.epochs.len() != state.epochs_done {
        bail!(
            "{} says {} epochs are done but its history holds {}",
            state_file.display(),
            state.epochs_done,
            state.history.epochs.len()
        );
    }
    let best_file = checkpoint.join(BEST_WEIGHTS);
    let best = if best_file.is_file() {
        let device = optimizer.device();
        Some(
            Tensor::read_safetensors(&best_file)
                .with_context(|| format!("cannot read {}", best_file.display()))?
                .into_iter()
                .map(|(n, t)| (n, t.to_device(device)))
                .collect(),
        )
    } else {
        None
    };
    if state.history.best.is_some() != best.is_some() {
        bail!(
            "{} and {} disagree on whether a best evaluation was kept",
            state_file.display(),
            best_file.display()
        );
    }
    Ok((state.history, best))
}

/// Fault injection for the kill tests (built only with the `fault-injection` feature, which
/// only the tests turn on): a pause of `BERT_FINETUNE_CHECKPOINT_PAUSE_MS` between the weights
/// and the optimizer state, so a test can kill the process mid-write.
#[cfg(feature = "fault-injection")]
fn pause_for_tests() {
    if let Some(ms) = std::env::var("BERT_FINETUNE_CHECKPOINT_PAUSE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}
