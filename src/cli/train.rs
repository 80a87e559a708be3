//! `bert-finetune train`: the tutorial end to end. Checks every argument and file first, then
//! hands the run to a [`Trainer`] (with per-epoch checkpoints in `<out>/checkpoints/`), scores
//! the out-of-domain test set and writes the model, `history.json`, `summary.json` and plots.
//!
//! What it shares with `train --train-file` (the checks, the fit, the saved files) is in
//! [`super::fit`].

use std::path::Path;

use anyhow::{bail, Context, Result};

use bert_finetune::data::cola::{Cola, Split};
use bert_finetune::data::split::{self, VALIDATION_FRACTION};
use bert_finetune::data::tokenizer::Padding;
use bert_finetune::model::{pretrained, BertConfig};
use bert_finetune::runtime::display::thousands;
use bert_finetune::train::{check_sequence_length, TrainConfig};
use bert_finetune::viz::{self, files::list_files};

use super::fit::{check_run_folder, fit, flag_error, is_main, report_truncation};
use super::fit::{resolve_class_weights, save_run};
use super::Common;

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
    report_truncation(&train_set, common.max_len);
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
