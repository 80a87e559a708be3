//! What both `train` paths share, the tutorial's CoLA ([`super::train`]) and a user's own
//! files ([`super::own_data`]): the flags' errors, the run folder's checks, the class weights,
//! the fitted [`Trainer`] and the files a finished run leaves. Both sides import from here, so
//! neither imports the other.
//!
//! Library errors name config fields (`TrainConfig.epochs = 0`); [`flag_error`] says them
//! with this command's flags (`--epochs 0`).

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use bert_finetune::data::tokenizer::BertTokenizer;
use bert_finetune::data::EncodedSet;
use bert_finetune::model::checkpoint::save_pretrained;
use bert_finetune::model::heads::balanced_class_weights;
use bert_finetune::model::TaskModel;
use bert_finetune::runtime::atomic;
use bert_finetune::runtime::display::thousands;
use bert_finetune::runtime::distributed::ProcessGroup;
use bert_finetune::train::{checkpoint, Checkpoints, ConfigError};
use bert_finetune::train::{History, TrainConfig, Trainer};

use super::progress::BarsAndLines;
use super::run_files::RunFiles;

/// A [`ConfigError`] said with the flag that sets its field; other errors pass unchanged.
pub fn flag_error(err: anyhow::Error) -> anyhow::Error {
    let Some(e) = err.downcast_ref::<ConfigError>() else {
        return err;
    };
    let flag = match e.field {
        "epochs" => "--epochs",
        "batch_size" => "--batch-size",
        "optimizer.lr" => "--lr",
        "optimizer.eps" => "--eps",
        "optimizer.weight_decay" => "--weight-decay",
        "optimizer.warmup_steps" => "--warmup-steps",
        "gradient_accumulation_steps" => "--gradient-accumulation-steps",
        "class_weights" => "--class-weights",
        "eval_steps" => "--eval-steps",
        "metric_for_best_model" => "--metric-for-best-model",
        "early_stopping_patience" => "--early-stopping-patience",
        "early_stopping_threshold" => "--early-stopping-threshold",
        "loss_scale" => "--loss-scale / --loss-scale-growth-interval",
        "max_steps" => "--max-steps",
        _ => return err,
    };
    anyhow!("{flag} {}: {}", e.value, e.reason)
}

/// `--class-weights` made concrete for `train`'s classes: "balanced" from its labels, or the
/// numbers given (their count is checked against the head when the run is built).
pub fn resolve_class_weights(
    mut config: TrainConfig,
    arg: Option<&str>,
    train: &EncodedSet,
) -> Result<TrainConfig> {
    let Some(arg) = arg else {
        return Ok(config);
    };
    let weights = if arg == "balanced" {
        let Some(classes) = train.labels.classes() else {
            bail!("--class-weights balanced: class weights apply to single-label classification");
        };
        let k = classes.iter().copied().max().map_or(0, |m| m as usize + 1);
        balanced_class_weights(classes, k).context("--class-weights balanced")?
    } else {
        arg.split(',')
            .map(|w| {
                w.trim().parse::<f64>().map_err(|_| {
                    anyhow!("--class-weights {arg}: {w:?} is not a number (give \"balanced\" or w1,w2,…)")
                })
            })
            .collect::<Result<_>>()?
    };
    config.class_weights = Some(weights);
    config.validate().map_err(|e| flag_error(e.into()))?;
    Ok(config)
}

/// The training and validation sets of a run on a user's files: the validation file's, or a
/// seeded `--validation-split` of the training file; the training set cut to `--limit`. Says
/// how many `unit`s each holds; an empty validation set is an error.
pub fn hold_out(
    all: EncodedSet,
    validation: Option<EncodedSet>,
    validation_split: f64,
    seed: u64,
    limit: Option<usize>,
    unit: &str,
) -> Result<(EncodedSet, EncodedSet)> {
    let (train_set, val_set) = match validation {
        Some(v) => (all, v),
        None => all.split(validation_split, seed),
    };
    let train_set = match limit {
        Some(n) => train_set.take(n),
        None => train_set,
    };
    if val_set.is_empty() {
        bail!("the validation set is empty: give --validation-file or more {unit}");
    }
    say!(
        "{} training {unit}, {} validation {unit}",
        thousands(train_set.len()),
        thousands(val_set.len())
    );
    Ok((train_set, val_set))
}

/// What a run on a user's files checks before reading them: the training settings (said with
/// their flags), a `--validation-split` strictly between 0 and 1, and the run folder.
pub fn check_own_run(
    config: &TrainConfig,
    validation_split: f64,
    out: &Path,
    resume: bool,
) -> Result<()> {
    config.validate().map_err(|e| flag_error(e.into()))?;
    if !(validation_split > 0.0 && validation_split < 1.0) {
        bail!("--validation-split {validation_split}: give a share between 0 and 1");
    }
    check_run_folder(out, resume)
}

/// The run's folder: writable (see [`check_output_folder`]), and holding a checkpoint when the
/// run resumes. Both train commands check it before reading any data.
pub fn check_run_folder(out: &Path, resume: bool) -> Result<()> {
    check_output_folder(out)?;
    if resume && checkpoint::newest(out.join("checkpoints"))?.is_none() {
        bail!(
            "--resume {}: no complete checkpoint in {}",
            out.display(),
            out.join("checkpoints").display()
        );
    }
    Ok(())
}

/// The run itself, the same for CoLA and a user's files: a [`Trainer`] with the CLI's bars and
/// per-epoch checkpoints in `<out>/checkpoints/` (resumed from there with `resume`), fitted.
/// Started by torchrun (or `--nproc`), it is one rank of a data-parallel run over c10d's Gloo
/// group: `--batch-size` rows per rank and step, rank 0 alone printing and writing.
pub fn fit<M: TaskModel>(
    model: M,
    config: TrainConfig,
    train_set: EncodedSet,
    val_set: EncodedSet,
    out: &Path,
    resume: bool,
) -> Result<(Trainer<M>, History)> {
    let mut trainer = Trainer::new(model, config, train_set, val_set)
        .map_err(flag_error)?
        .with_sink(BarsAndLines::new());
    let device = trainer.model().var_store().device();
    if let Some(group) = ProcessGroup::from_env_for(device)? {
        if group.is_main() {
            println!(
                "Data parallel: {} rank{} ({}), {} sentences per step",
                group.world_size(),
                if group.world_size() == 1 { "" } else { "s" },
                if device.is_cuda() { "NCCL" } else { "Gloo" },
                group.world_size() * trainer.config().batch_size
            );
        }
        trainer = trainer.with_process_group(group)?;
    }
    let mut trainer = trainer.with_checkpoints(Checkpoints {
        dir: out.join("checkpoints"),
        resume,
    })?;
    let history = trainer.fit()?;
    Ok((trainer, history))
}

/// True unless this process is a rank other than 0 of a data-parallel run.
pub fn is_main<M: TaskModel>(trainer: &Trainer<M>) -> bool {
    trainer.process_group().is_none_or(ProcessGroup::is_main)
}

/// Writes what a finished run leaves in `out`: the model with its tokenizer,
/// `history.json` and `summary.json`, each through a temporary name.
pub fn save_run<M: TaskModel>(
    trainer: &Trainer<M>,
    tokenizer: &BertTokenizer,
    history: &History,
    summary: &serde_json::Value,
    out: &Path,
) -> Result<()> {
    if !is_main(trainer) {
        return Ok(()); // rank 0 writes the run's files
    }
    let files = RunFiles::new(out);
    save_pretrained(trainer.model(), out, Some(tokenizer))?;
    atomic::write(&files.history(), history.to_json()?.as_bytes())?;
    atomic::write(
        &files.summary(),
        serde_json::to_string_pretty(summary)?.as_bytes(),
    )?;
    Ok(())
}

/// The output folder must be a folder we can write: created if missing, probed with a file.
fn check_output_folder(out: &Path) -> Result<()> {
    if out.exists() && !out.is_dir() {
        bail!("--out {}: this is a file, not a folder", out.display());
    }
    std::fs::create_dir_all(out)
        .with_context(|| format!("--out {}: cannot create the folder", out.display()))?;
    let probe = out.join(".write-test");
    std::fs::write(&probe, b"")
        .with_context(|| format!("--out {}: the folder is not writable", out.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Says how many training rows `--max-len` cut, so a user sees what the cut costs.
pub fn report_truncation(set: &EncodedSet, max_len: usize) {
    let cut = set.truncated();
    if cut > 0 {
        say!(
            "{} of {} training rows are longer than --max-len {max_len} tokens and were cut \
             ({:.1}%; the model takes up to 512)",
            thousands(cut),
            thousands(set.len()),
            100.0 * cut as f64 / set.len().max(1) as f64
        );
    }
}
