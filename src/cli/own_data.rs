//! `bert-finetune train --train-file FILE`: fine-tuning on a user's own table (CSV, TSV, JSON
//! lines, Parquet), single texts or pairs, for every problem type transformers knows:
//! single-label classification with any number of classes named as the file names them,
//! regression (float labels), multi-label (a list of labels per row, or one 0/1 column per
//! label). The run is the tutorial's own ([`fit`], [`save_run`] in [`super::fit`]); only the data comes from
//! elsewhere.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use bert_finetune::data::glue::GlueTask;
use bert_finetune::data::table::{read_table_with, Format, Quoting};
use bert_finetune::data::task::{Examples, Task, TaskSpec};
use bert_finetune::data::tokenizer::Padding;
use bert_finetune::data::EncodedSet;
use bert_finetune::data::ProblemType;
use bert_finetune::model::{pretrained, BertForSequenceClassification};
use bert_finetune::runtime::display::thousands;
use bert_finetune::train::TrainConfig;

use super::fit::{check_own_run, fit, hold_out, report_truncation};
use super::fit::{resolve_class_weights, save_run};
use super::Common;

/// The flags that name a user's files and columns (a token-classification file: the words'
/// and tags' fields, see [`super::tagging`]).
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
    #[arg(long, value_delimiter = ',', alias = "text-column")]
    pub text_columns: Vec<String>,
    /// The label column; several, comma-separated (toxic,insult,threat), for a multi-label
    /// task with one 0/1 column per label.
    #[arg(long, value_delimiter = ',', default_value = "label")]
    pub label_column: Vec<String>,
    /// single_label_classification, regression or multi_label_classification (default: from
    /// the labels: floats mean regression, lists multi-label).
    #[arg(long)]
    pub problem_type: Option<String>,
    /// csv, tsv, jsonl or parquet; conll for a token-classification file in CoNLL-2003 text
    /// (default: from each file's extension).
    #[arg(long)]
    pub format: Option<String>,
    /// A GLUE task (cola, sst2, mrpc, qqp, stsb, mnli, qnli, rte, wnli): its files in the
    /// --data folder (the task's folder of the GLUE download), its columns and the metric
    /// GLUE reports, scored on its dev file(s).
    #[arg(long, conflicts_with = "train_file")]
    pub task: Option<String>,
    /// Token classification: label every word piece with its word's tag (B- turned into I-
    /// after the first piece), as run_ner's --label_all_tokens; by default only a word's first
    /// piece is labelled.
    #[arg(long)]
    pub label_all_tokens: bool,
    /// Question answering: tokens each window of a long context shares with the previous
    /// one (run_qa's --doc_stride; default 128 at --max-len 384 and more, else a quarter of
    /// --max-len).
    #[arg(long, value_name = "N")]
    pub doc_stride: Option<usize>,
}

/// Where a run's data comes from and how its table is read: the user's flags, or a GLUE
/// preset filling them in.
struct Sources {
    train: PathBuf,
    validation: Option<PathBuf>,
    tests: Vec<PathBuf>,
    quoting: Quoting,
    spec: TaskSpec,
    glue: Option<GlueTask>,
}

impl Sources {
    fn of(common: &Common, own: &OwnData) -> Result<Sources> {
        let problem_type: Option<ProblemType> = own
            .problem_type
            .as_deref()
            .map(str::parse)
            .transpose()
            .context("--problem-type")?;
        if let Some(name) = &own.task {
            let glue = GlueTask::named(name)?;
            let (train, dev) = glue.files(&common.data())?;
            return Ok(Sources {
                train,
                validation: dev.first().cloned(),
                tests: dev,
                quoting: Quoting::Off,
                spec: TaskSpec {
                    text_columns: glue.text_columns.iter().map(|c| c.to_string()).collect(),
                    label_column: glue.label_column.to_string(),
                    label_columns: Vec::new(),
                    problem_type: Some(glue.problem_type),
                },
                glue: Some(glue),
            });
        }
        let (label_column, label_columns) = match own.label_column.as_slice() {
            [one] => (one.clone(), Vec::new()),
            many => (String::new(), many.to_vec()),
        };
        Ok(Sources {
            train: own.train_file.clone().context("--train-file is missing")?,
            validation: own.validation_file.clone(),
            tests: own.test_file.iter().cloned().collect(),
            quoting: Quoting::Double,
            spec: TaskSpec {
                text_columns: own.text_columns.clone(),
                label_column,
                label_columns,
                problem_type,
            },
            glue: None,
        })
    }
}

pub fn run(
    common: &Common,
    own: &OwnData,
    config: TrainConfig,
    class_weights: Option<&str>,
    limit: Option<usize>,
    out: &Path,
    resume: bool,
) -> Result<()> {
    let format: Option<Format> = own.format.as_deref().map(str::parse).transpose()?;
    check_own_run(&config, own.validation_split, out, resume)?;
    let sources = Sources::of(common, own)?;
    let read = |file: &Path| read_table_with(file, format, sources.quoting);
    let train_file = sources.train.as_path();
    let train_frame = read(train_file)?;
    let task = Task::infer(&train_frame, &sources.spec, train_file)?;
    if task.is_pair() && common.max_len < 3 {
        bail!(
            "--max-len {}: a pair needs at least 3 positions ([CLS] and two [SEP])",
            common.max_len
        );
    }
    let train_examples = task.examples(&train_frame, train_file)?;
    let val_examples = match &sources.validation {
        Some(file) => Some(task.examples(&read(file)?, file)?),
        None => None,
    };
    let test_examples = sources
        .tests
        .iter()
        .map(|file| Ok((file.clone(), task.examples(&read(file)?, file)?)))
        .collect::<Result<Vec<_>>>()?;

    let (device, model_name) = common.announce()?;
    match task.problem_type {
        ProblemType::Regression => say!(
            "Task: regression of {} on {}",
            task.label_column,
            task.text_columns.join(" + ")
        ),
        p => say!(
            "Task: {} on {} ({} {}: {})",
            p.name(),
            task.text_columns.join(" + "),
            task.label_names.len(),
            if p == ProblemType::MultiLabelClassification {
                "labels"
            } else {
                "classes"
            },
            task.label_names.join(", ")
        ),
    }
    bert_finetune::runtime::device::manual_seed(common.seed);
    let tokenizer = pretrained::load_tokenizer(&model_name)?;
    let padding = Padding::from(common.padding);
    let encode = |examples: &Examples, padding: Padding| {
        EncodedSet::from_examples(&tokenizer, examples, common.max_len, padding)
    };
    let all = encode(&train_examples, padding)?;
    let validation = val_examples
        .as_ref()
        .map(|v| encode(v, padding))
        .transpose()?;
    let (train_set, val_set) = hold_out(
        all,
        validation,
        own.validation_split,
        common.seed,
        limit,
        "samples",
    )?;
    report_truncation(&train_set, common.max_len);
    let config = resolve_class_weights(config, class_weights, &train_set)?;
    let mut model =
        BertForSequenceClassification::from_pretrained(&model_name, task.num_labels(), device)?;
    model.config.set_labels(&task.label_names);
    model.config.set_problem_type(task.problem_type);
    pretrained::check_vocabulary(&tokenizer, &model)?;
    let (trainer, history) = fit(model, config, train_set, val_set, out, resume)?;

    let mut summary = serde_json::json!({
        "model": model_name,
        "task": task,
        "train_size": trainer.train_set().len(),
        "train_truncated": history.train_truncated,
        "validation_metrics": history.epochs.iter().map(|e| &e.val_metrics).collect::<Vec<_>>(),
        "best": history.best,
        "stopped_early": history.stopped_early,
        "training_seconds": history.total_seconds,
    });
    let mut by_file = serde_json::Map::new();
    for (i, (file, test)) in test_examples.iter().enumerate() {
        let test_set = encode(test, Padding::Longest)?;
        say!(
            "\nScoring {} rows of {}...",
            thousands(test_set.len()),
            file.display()
        );
        let scored = trainer.evaluate(&test_set, common.batch_size)?;
        if super::first_rank() {
            print!("{}", super::scores::report(&scored, &task.label_names));
        }
        let metrics = scored.metrics();
        if let Some(glue) = &sources.glue {
            let reported: Vec<String> = glue
                .metrics
                .iter()
                .map(|m| format!("{m} {:.4}", metrics.get(*m).copied().unwrap_or(f64::NAN)))
                .collect();
            say!(
                "GLUE {} ({}): {}",
                glue.name,
                file.display(),
                reported.join(", ")
            );
        }
        if i == 0 {
            for (k, v) in &metrics {
                summary[format!("test_{k}")] = (*v).into();
            }
            summary["test_metrics"] = serde_json::to_value(&metrics)?;
        }
        by_file.insert(file.display().to_string(), serde_json::to_value(&metrics)?);
    }
    if !by_file.is_empty() {
        summary["test_metrics_by_file"] = by_file.into();
    }
    if let Some(glue) = &sources.glue {
        summary["glue_task"] = glue.name.into();
    }
    save_run(&trainer, &tokenizer, &history, &summary, out)?;
    say!("\n{history}\n\nSaved to {}", out.display());
    Ok(())
}
