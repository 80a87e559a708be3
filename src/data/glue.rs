//! The GLUE tasks as presets of the general reader: for each, the files of its GLUE folder,
//! the columns that hold the text(s) and the label, and the metric GLUE reports (as
//! transformers' `run_glue.py` and the GLUE paper name them). GLUE's TSV files quote nothing
//! (sentences hold `"`), so they are read as tab-separated with quoting off.
//!
//! CoLA is a preset too: its raw files have no header (see [`super::cola`]), so its folder is
//! read by the CoLA reader, which checks CoLA's row counts, and then follows the same path.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use super::problem_type::ProblemType;

/// One GLUE task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlueTask {
    /// The name `--task` takes (`cola`, `sst2`, …).
    pub name: &'static str,
    /// The text column, or two for pairs.
    pub text_columns: &'static [&'static str],
    pub label_column: &'static str,
    pub problem_type: ProblemType,
    /// The training file in the task's folder.
    pub train_file: &'static str,
    /// The files scored after training (GLUE's test labels are hidden, so its dev files):
    /// the first one is the validation set; MNLI scores matched and mismatched.
    pub dev_files: &'static [&'static str],
    /// The figures GLUE reports for the task, by `Evaluation::metrics` names.
    pub metrics: &'static [&'static str],
}

const fn task(
    name: &'static str,
    text_columns: &'static [&'static str],
    label_column: &'static str,
    problem_type: ProblemType,
    dev_files: &'static [&'static str],
    metrics: &'static [&'static str],
) -> GlueTask {
    GlueTask {
        name,
        text_columns,
        label_column,
        problem_type,
        train_file: "train.tsv",
        dev_files,
        metrics,
    }
}

const SINGLE: ProblemType = ProblemType::SingleLabelClassification;
const DEV: &[&str] = &["dev.tsv"];

/// Every GLUE task, with the columns of the files of the GLUE download.
pub const GLUE_TASKS: [GlueTask; 9] = [
    GlueTask {
        train_file: "raw/in_domain_train.tsv",
        ..task(
            "cola",
            &["sentence"],
            "label",
            SINGLE,
            &["raw/in_domain_dev.tsv"],
            &["mcc"],
        )
    },
    task("sst2", &["sentence"], "label", SINGLE, DEV, &["accuracy"]),
    task(
        "mrpc",
        &["#1 String", "#2 String"],
        "Quality",
        SINGLE,
        DEV,
        &["f1", "accuracy"],
    ),
    task(
        "qqp",
        &["question1", "question2"],
        "is_duplicate",
        SINGLE,
        DEV,
        &["f1", "accuracy"],
    ),
    task(
        "stsb",
        &["sentence1", "sentence2"],
        "score",
        ProblemType::Regression,
        DEV,
        &["pearson", "spearmanr"],
    ),
    task(
        "mnli",
        &["sentence1", "sentence2"],
        "gold_label",
        SINGLE,
        &["dev_matched.tsv", "dev_mismatched.tsv"],
        &["accuracy"],
    ),
    task(
        "qnli",
        &["question", "sentence"],
        "label",
        SINGLE,
        DEV,
        &["accuracy"],
    ),
    task(
        "rte",
        &["sentence1", "sentence2"],
        "label",
        SINGLE,
        DEV,
        &["accuracy"],
    ),
    task(
        "wnli",
        &["sentence1", "sentence2"],
        "label",
        SINGLE,
        DEV,
        &["accuracy"],
    ),
];

impl GlueTask {
    /// The preset named `name` (case and `-` ignored: `SST-2`, `sst2`).
    pub fn named(name: &str) -> Result<GlueTask> {
        let key: String = name
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .collect::<String>()
            .to_ascii_lowercase();
        match GLUE_TASKS.iter().find(|t| t.name == key) {
            Some(t) => Ok(*t),
            None => bail!(
                "unknown task {name:?}: the GLUE tasks are {}",
                GLUE_TASKS.map(|t| t.name).join(", ")
            ),
        }
    }

    pub fn is_cola(&self) -> bool {
        self.name == "cola"
    }

    /// The training file and the dev files in the task's folder `dir`, each checked to exist.
    pub fn files(&self, dir: &Path) -> Result<(PathBuf, Vec<PathBuf>)> {
        let found = |name: &str| -> Result<PathBuf> {
            let file = dir.join(name);
            if !file.is_file() {
                bail!(
                    "--task {} --data {}: {} is missing (the task's folder of the GLUE \
                     download holds {} and {})",
                    self.name,
                    dir.display(),
                    file.display(),
                    self.train_file,
                    self.dev_files.join(", ")
                );
            }
            Ok(file)
        };
        Ok((
            found(self.train_file)?,
            self.dev_files
                .iter()
                .map(|f| found(f))
                .collect::<Result<_>>()?,
        ))
    }
}
