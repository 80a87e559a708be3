//! `bert-finetune train`: the tutorial end to end. Checks every argument and file first, then
//! hands the run to a [`Trainer`] (with per-epoch checkpoints in `<out>/checkpoints/`), scores
//! the out-of-domain test set and writes the model, `history.json`, `summary.json` and plots.
//!
//! Library errors name config fields (`TrainConfig.epochs = 0`); [`flag_error`] says them
//! with this command's flags (`--epochs 0`).

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use bert_finetune::data::cola::{Cola, Split};
use bert_finetune::data::split::{self, VALIDATION_FRACTION};
use bert_finetune::data::tokenizer::{BertTokenizer, Padding};
use bert_finetune::data::EncodedSet;
use bert_finetune::model::heads::balanced_class_weights;
use bert_finetune::model::{pretrained, BertConfig, BertForSequenceClassification};
use bert_finetune::runtime::atomic;
use bert_finetune::runtime::distributed::ProcessGroup;
use bert_finetune::train::{check_sequence_length, checkpoint, Checkpoints, ConfigError};
use bert_finetune::train::{History, TrainConfig, Trainer};
use bert_finetune::viz::display::thousands;
use bert_finetune::viz::{self, files::list_files};

use super::progress::BarsAndLines;
use super::run_files::RunFiles;
use super::Common;

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
        _ => return err,
    };
    anyhow!("{flag} {}: {}", e.value, e.reason)
}

/// Everything that can be checked before the long work starts: arguments, the output
/// folder, the data files, the model folder. Returns the model's folder.
fn check_before_training(
    common: &Common,
    config: &TrainConfig,
    limit: Option<usize>,
    out: &Path,
    resume: bool,
) -> Result<String> {
    config.validate().map_err(|e| flag_error(e.into()))?;
    if let Some(n) = limit {
        if n < 10 {
            bail!("--limit {n}: give at least 10 sentences, so the 90/10 split leaves one to validate on");
        }
    }
    if common.max_len < 2 {
        bail!(
            "--max-len {}: a sequence needs at least 2 positions ([CLS] and [SEP])",
            common.max_len
        );
    }
    check_run_folder(out, resume)?;
    let data = common.data();
    for split in [Split::Train, Split::OutOfDomainDev] {
        let file = data.join(split.relative_path());
        if !file.is_file() {
            bail!(
                "--data {}: {} is missing (expected the cola_public folder of CoLA 1.1)",
                data.display(),
                file.display()
            );
        }
    }
    // The training set's size, as the split will make it, for the warm-up check.
    let rows = Cola::load_split(&data, Split::Train)?.len();
    let train_rows = ((1.0 - VALIDATION_FRACTION) * rows as f64).floor() as usize;
    let train_rows = limit.map_or(train_rows, |n| n.min(train_rows));
    config
        .validate_steps(train_rows.div_ceil(config.batch_size))
        .map_err(|e| flag_error(e.into()))?;
    let model_dir = common.model()?;
    let config_file = Path::new(&model_dir).join("config.json");
    let model_config = BertConfig::from_file(&config_file)?;
    check_sequence_length(common.max_len, &model_config)
        .with_context(|| format!("--max-len {} ({})", common.max_len, config_file.display()))?;
    Ok(model_dir)
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
pub fn fit(
    model: BertForSequenceClassification,
    config: TrainConfig,
    train_set: EncodedSet,
    val_set: EncodedSet,
    out: &Path,
    resume: bool,
) -> Result<(Trainer, History)> {
    let mut trainer = Trainer::new(model, config, train_set, val_set)
        .map_err(flag_error)?
        .with_sink(BarsAndLines::new());
    if let Some(group) = ProcessGroup::from_env_for(trainer.model().vs.device())? {
        if group.is_main() {
            println!(
                "Data parallel: {} rank{} ({}), {} sentences per step",
                group.world_size(),
                if group.world_size() == 1 { "" } else { "s" },
                if trainer.model().vs.device().is_cuda() {
                    "NCCL"
                } else {
                    "Gloo"
                },
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
pub fn is_main(trainer: &Trainer) -> bool {
    trainer.process_group().is_none_or(ProcessGroup::is_main)
}

/// Writes what a finished run leaves in `out`: the model with its tokenizer,
/// `history.json` and `summary.json`, each through a temporary name.
pub fn save_run(
    trainer: &Trainer,
    tokenizer: &BertTokenizer,
    history: &History,
    summary: &serde_json::Value,
    out: &Path,
) -> Result<()> {
    if !is_main(trainer) {
        return Ok(()); // rank 0 writes the run's files
    }
    let files = RunFiles::new(out);
    trainer.model().save_pretrained(out, Some(tokenizer))?;
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

pub fn run(
    common: &Common,
    config: TrainConfig,
    class_weights: Option<&str>,
    limit: Option<usize>,
    out: &Path,
    resume: bool,
) -> Result<()> {
    let model_name = check_before_training(common, &config, limit, out, resume)?;
    let report = common.device_report();
    let device = report.device;
    say!("{report}");
    say!("Model: {model_name}");
    say!("Precision: {}", config.precision);
    bert_finetune::runtime::device::manual_seed(common.seed);
    let tokenizer = pretrained::load_tokenizer(&model_name)?;
    let padding = Padding::from(common.padding);
    let data = common.data();
    let (train_set, val_set) = split::train_validation(
        &tokenizer,
        &data,
        common.max_len,
        padding,
        common.seed,
        limit,
    )?;
    say!(
        "{} training samples, {} validation samples",
        thousands(train_set.len()),
        thousands(val_set.len())
    );
    super::own_data::report_truncation(&train_set, common.max_len);
    let config = resolve_class_weights(config, class_weights, &train_set)?;
    let model = pretrained::load_model(&model_name, device)?;
    pretrained::check_vocabulary(&tokenizer, &model)?;
    let precision = config.precision;
    let (trainer, history) = fit(model, config, train_set, val_set, out, resume)?;

    let test_set = split::encode_split(
        &tokenizer,
        &data,
        Split::OutOfDomainDev,
        common.max_len,
        padding,
        None,
    )?;
    if is_main(&trainer) {
        println!(
            "\nPredicting labels for {} test sentences...",
            thousands(test_set.len())
        );
    }
    let scored = trainer.evaluate(&test_set, common.batch_size)?;
    if is_main(&trainer) {
        println!(
            "{}",
            Cola::load_split(&data, Split::OutOfDomainDev)?.label_counts()
        );
        println!("{scored}");
    }

    let summary = serde_json::json!({
        "model": model_name,
        "device": format!("{device:?}"),
        "train_size": trainer.train_set().len(),
        "test_size": test_set.len(),
        "test_mcc": scored.mcc(),
        "test_accuracy": scored.accuracy(),
        "test_mcc_per_batch": scored.per_batch_mcc(),
        "validation_accuracy": history.epochs.iter().map(|e| e.val_accuracy).collect::<Vec<_>>(),
        "training_seconds": history.total_seconds,
        "precision": precision,
        "padded_share": history.padded_share,
        "sentences_per_second": history.epochs.iter().map(|e| e.sentences_per_second).collect::<Vec<_>>(),
    });
    save_run(&trainer, &tokenizer, &history, &summary, out)?;
    if !is_main(&trainer) {
        return Ok(());
    }
    viz::save_history_plots(&history, out)?;
    viz::mcc_bars(&scored)?.save(out, "mcc")?;
    println!("\n{history}\n");
    println!("{}", list_files(out)?);
    Ok(())
}
