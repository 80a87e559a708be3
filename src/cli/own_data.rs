//! `bert-finetune train --train-file FILE`: fine-tuning on a user's own table (CSV, TSV, JSON
//! lines, Parquet), single texts or pairs, any number of classes named as the file names them.
//! The run is the tutorial's own ([`fit`], [`save_run`]); only the data comes from elsewhere.
//!
//! Regression and multi-label files are recognised (see [`Task`]) but not trained yet: their
//! losses exist (`model::heads`), their batches and metrics are the next step, and the command
//! says so instead of guessing.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use bert_finetune::data::table::{read_table, Format};
use bert_finetune::data::task::{Examples, Labels, ProblemType, Task, TaskSpec};
use bert_finetune::data::tokenizer::{BertTokenizer, Padding};
use bert_finetune::data::EncodedSet;
use bert_finetune::eval::ConfusionMatrix;
use bert_finetune::model::{pretrained, BertForSequenceClassification};
use bert_finetune::train::TrainConfig;
use bert_finetune::viz::display::thousands;

use super::train::{check_run_folder, fit, flag_error, save_run};
use super::Common;

/// The flags that name a user's files and columns.
#[derive(clap::Args, Default)]
pub struct OwnData {
    /// Train on this table instead of CoLA (.csv, .tsv, .jsonl, .parquet).
    #[arg(long)]
    pub train_file: Option<PathBuf>,
    /// Validate on this table (default: hold out --validation-split of the training file).
    #[arg(long)]
    pub validation_file: Option<PathBuf>,
    /// Share of the training file held out for validation when no validation file is given.
    #[arg(long, default_value_t = 0.1)]
    pub validation_split: f64,
    /// Score this table after training.
    #[arg(long)]
    pub test_file: Option<PathBuf>,
    /// The text column, or two for pairs: a,b (default: sentence1,sentence2 when present, else
    /// the first columns besides the label).
    #[arg(long, value_delimiter = ',')]
    pub text_columns: Vec<String>,
    #[arg(long, default_value = "label")]
    pub label_column: String,
    /// csv, tsv, jsonl or parquet (default: from each file's extension).
    #[arg(long)]
    pub format: Option<String>,
}

fn encode(
    tokenizer: &BertTokenizer,
    examples: &Examples,
    common: &Common,
    padding: Padding,
) -> Result<EncodedSet> {
    let Labels::Classes(labels) = &examples.labels else {
        bail!("only class labels are encoded here");
    };
    match &examples.second {
        Some(second) => EncodedSet::pairs(
            tokenizer,
            &examples.first,
            second,
            labels,
            common.max_len,
            padding,
        ),
        None => EncodedSet::new(tokenizer, &examples.first, labels, common.max_len, padding),
    }
}

pub fn run(
    common: &Common,
    own: &OwnData,
    config: TrainConfig,
    limit: Option<usize>,
    out: &Path,
    resume: bool,
) -> Result<()> {
    config.validate().map_err(|e| flag_error(e.into()))?;
    if !(own.validation_split > 0.0 && own.validation_split < 1.0) {
        bail!(
            "--validation-split {}: give a share between 0 and 1",
            own.validation_split
        );
    }
    let format: Option<Format> = own.format.as_deref().map(str::parse).transpose()?;
    check_run_folder(out, resume)?;
    let train_file = own
        .train_file
        .as_deref()
        .context("--train-file is missing")?;
    let train_frame = read_table(train_file, format)?;
    let spec = TaskSpec {
        text_columns: own.text_columns.clone(),
        label_column: own.label_column.clone(),
        problem_type: None,
    };
    let task = Task::infer(&train_frame, &spec, train_file)?;
    if task.problem_type != ProblemType::SingleLabelClassification {
        bail!(
            "{}: column {:?} makes this a {} task; this version trains single-label \
             classification only (regression and multi-label heads come next)",
            train_file.display(),
            task.label_column,
            task.problem_type.name()
        );
    }
    if task.is_pair() && common.max_len < 3 {
        bail!(
            "--max-len {}: a pair needs at least 3 positions ([CLS] and two [SEP])",
            common.max_len
        );
    }
    let train_examples = task.examples(&train_frame, train_file)?;
    let val_examples = match &own.validation_file {
        Some(file) => Some(task.examples(&read_table(file, format)?, file)?),
        None => None,
    };
    let test_examples = match &own.test_file {
        Some(file) => Some(task.examples(&read_table(file, format)?, file)?),
        None => None,
    };

    let report = common.device_report();
    let device = report.device;
    println!("{report}");
    let model_name = common.model()?;
    println!("Model: {model_name}");
    println!(
        "Task: {} on {} ({} classes: {})",
        task.problem_type.name(),
        task.text_columns.join(" + "),
        task.label_names.len(),
        task.label_names.join(", ")
    );
    bert_finetune::runtime::device::manual_seed(common.seed);
    let tokenizer = pretrained::load_tokenizer(&model_name)?;
    let padding = Padding::from(common.padding);
    let all = encode(&tokenizer, &train_examples, common, padding)?;
    let (train_set, val_set) = match &val_examples {
        Some(v) => (all, encode(&tokenizer, v, common, padding)?),
        None => all.split(own.validation_split, common.seed),
    };
    let train_set = match limit {
        Some(n) => train_set.take(n),
        None => train_set,
    };
    if val_set.is_empty() {
        bail!("the validation set is empty: give --validation-file or more rows");
    }
    println!(
        "{} training samples, {} validation samples",
        thousands(train_set.len()),
        thousands(val_set.len())
    );
    let mut model =
        BertForSequenceClassification::from_pretrained(&model_name, task.num_labels(), device)?;
    model.config.set_labels(&task.label_names);
    pretrained::check_vocabulary(&tokenizer, &model)?;
    let (trainer, history) = fit(model, config, train_set, val_set, out, resume)?;

    let mut summary = serde_json::json!({
        "model": model_name,
        "task": task,
        "train_size": trainer.train_set().len(),
        "validation_accuracy": history.epochs.iter().map(|e| e.val_accuracy).collect::<Vec<_>>(),
        "training_seconds": history.total_seconds,
    });
    if let Some(test) = &test_examples {
        let test_set = encode(&tokenizer, test, common, Padding::Longest)?;
        println!("\nScoring {} test rows...", thousands(test_set.len()));
        let scored = trainer.evaluate(&test_set, common.batch_size)?;
        let cm = ConfusionMatrix::new(&scored.preds, &scored.labels, task.label_names.len());
        let macro_scores = cm.macro_average();
        println!(
            "Accuracy: {:.3}\nMacro F1: {:.3}\nMCC: {:.3}",
            scored.accuracy(),
            macro_scores.f1,
            scored.mcc()
        );
        for (name, s) in task.label_names.iter().zip(cm.per_class()) {
            println!(
                "  {name:<20} precision {:.3}  recall {:.3}  F1 {:.3}  ({} rows)",
                s.precision, s.recall, s.f1, s.support
            );
        }
        summary["test_accuracy"] = scored.accuracy().into();
        summary["test_macro_f1"] = macro_scores.f1.into();
        summary["test_mcc"] = scored.mcc().into();
    }
    save_run(&trainer, &tokenizer, &history, &summary, out)?;
    println!("\n{history}\n\nSaved to {}", out.display());
    Ok(())
}
