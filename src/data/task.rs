//! What a user's table means: which columns hold the text (one, or a pair), which the label,
//! and the problem type, as transformers names them. Inferred from the training file the way
//! Hugging Face's `run_classification.py` does unless given: `sentence1`/`sentence2` when both
//! exist, else the first non-label column(s); float labels mean regression, lists of labels
//! multi-label classification, integers or strings single-label classification with the
//! sorted distinct values as classes.
//!
//! Every problem with a file is an error naming the file, the row (1-based, counting data
//! rows) and the column.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{anyhow, bail, Result};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::labels::Labels;
use super::problem_type::ProblemType;

/// The texts and labels of one file, row by row.
#[derive(Debug, Clone)]
pub struct Examples {
    pub first: Vec<String>,
    /// The second text of each pair (`None` for single texts).
    pub second: Option<Vec<String>>,
    pub labels: Labels,
}

impl Examples {
    pub fn len(&self) -> usize {
        self.first.len()
    }

    pub fn is_empty(&self) -> bool {
        self.first.is_empty()
    }
}

/// What the caller says about a table; anything left out is inferred.
#[derive(Debug, Clone)]
pub struct TaskSpec {
    /// One column (single texts) or two (pairs); empty: inferred.
    pub text_columns: Vec<String>,
    pub label_column: String,
    /// Several 0/1 columns, one per label, make a multi-label task named by the columns
    /// (`label_column` is then unused).
    pub label_columns: Vec<String>,
    /// Inferred from the label column when `None`.
    pub problem_type: Option<ProblemType>,
}

impl Default for TaskSpec {
    fn default() -> Self {
        TaskSpec {
            text_columns: Vec::new(),
            label_column: "label".to_string(),
            label_columns: Vec::new(),
            problem_type: None,
        }
    }
}

/// A task, as the training file defines it: its columns, its problem type and the names of
/// its labels (for a regression, the one output's name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub text_columns: Vec<String>,
    pub label_column: String,
    /// The 0/1 columns of a multi-label task read from one column per label (empty when the
    /// labels are in `label_column`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub label_columns: Vec<String>,
    pub problem_type: ProblemType,
    /// Class names in id order (single- and multi-label); `["score"]`-like for regression.
    pub label_names: Vec<String>,
}

fn column<'a>(frame: &'a DataFrame, name: &str, file: &Path) -> Result<&'a Column> {
    frame.column(name).map_err(|_| {
        let names: Vec<&str> = frame
            .get_column_names()
            .iter()
            .map(|n| n.as_str())
            .collect();
        anyhow!(
            "{}: no column {name:?}; its columns are {}",
            file.display(),
            names.join(", ")
        )
    })
}

fn first_null(col: &Column) -> Option<usize> {
    (col.null_count() > 0).then(|| {
        col.is_null()
            .iter()
            .position(|n| n == Some(true))
            .unwrap_or(0)
    })
}

/// A column's values as strings: a null is an error naming its row.
fn strings(frame: &DataFrame, name: &str, file: &Path, what: &str) -> Result<Vec<String>> {
    let col = column(frame, name, file)?;
    if let Some(row) = first_null(col) {
        bail!(
            "{}: row {}: the {what} in column {name:?} is missing (null)",
            file.display(),
            row + 1
        );
    }
    Ok(super::table::text_values(col, file)?
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect())
}

/// A label as the key it is named by: integers by value (so they sort as numbers), the rest
/// as text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Int(i64),
    Text(String),
}

impl Key {
    fn name(&self) -> String {
        match self {
            Key::Int(i) => i.to_string(),
            Key::Text(s) => s.clone(),
        }
    }
}

/// The class keys of a (non-list) label column, row by row.
fn class_keys(col: &Column, name: &str, file: &Path) -> Result<Vec<Key>> {
    let dtype = col.dtype().clone();
    if dtype.is_integer() || dtype == DataType::Boolean {
        let ints = col
            .cast(&DataType::Int64)
            .map_err(|e| anyhow!("{}: column {name:?}: {e}", file.display()))?;
        Ok(ints
            .i64()
            .map_err(|e| anyhow!("{}: column {name:?}: {e}", file.display()))?
            .iter()
            .map(|v| Key::Int(v.unwrap_or_default()))
            .collect())
    } else if dtype.is_string() {
        Ok(col
            .str()
            .map_err(|e| anyhow!("{}: column {name:?}: {e}", file.display()))?
            .iter()
            .map(|v| Key::Text(v.unwrap_or_default().to_string()))
            .collect())
    } else {
        bail!(
            "{}: column {name:?} holds {dtype}; single-label classes are integers, strings or \
             booleans (floats mean regression, lists multi-label)",
            file.display()
        )
    }
}

/// The label keys of each row of a list column (multi-label).
fn list_keys(col: &Column, name: &str, file: &Path) -> Result<Vec<Vec<Key>>> {
    let lists = col.list().map_err(|_| {
        anyhow!(
            "{}: column {name:?} holds {}; multi-label rows hold a list of labels",
            file.display(),
            col.dtype()
        )
    })?;
    let mut rows = Vec::with_capacity(lists.len());
    for r in 0..lists.len() {
        let Some(row) = lists.get_as_series(r) else {
            bail!(
                "{}: row {}: the label list in column {name:?} is missing (null)",
                file.display(),
                r + 1
            );
        };
        let row = Column::from(row);
        if let Some(i) = first_null(&row) {
            bail!(
                "{}: row {}: label {} of the list in column {name:?} is missing (null)",
                file.display(),
                r + 1,
                i + 1
            );
        }
        rows.push(class_keys(&row, name, file)?);
    }
    Ok(rows)
}

impl Task {
    /// The task a training file defines, from what `spec` says and the rest inferred.
    pub fn infer(frame: &DataFrame, spec: &TaskSpec, file: &Path) -> Result<Task> {
        if !spec.label_columns.is_empty() {
            return Self::infer_indicator_columns(frame, spec, file);
        }
        let label = &spec.label_column;
        let label_col = column(frame, label, file)?;
        let text_columns = if spec.text_columns.is_empty() {
            let others: Vec<String> = frame
                .get_column_names()
                .iter()
                .map(|n| n.to_string())
                .filter(|n| n != label)
                .collect();
            if others.iter().any(|n| n == "sentence1") && others.iter().any(|n| n == "sentence2") {
                vec!["sentence1".to_string(), "sentence2".to_string()]
            } else if others.is_empty() {
                bail!(
                    "{}: no text column besides the label column {label:?}",
                    file.display()
                );
            } else {
                others.into_iter().take(2).collect()
            }
        } else {
            spec.text_columns.clone()
        };
        if text_columns.len() > 2 {
            bail!(
                "{} text columns given ({}); a task reads one text or a pair",
                text_columns.len(),
                text_columns.join(", ")
            );
        }
        for c in &text_columns {
            column(frame, c, file)?;
        }
        let dtype = label_col.dtype();
        let problem_type = spec.problem_type.unwrap_or(if dtype.is_list() {
            ProblemType::MultiLabelClassification
        } else if dtype.is_float() {
            ProblemType::Regression
        } else {
            ProblemType::SingleLabelClassification
        });
        if let Some(row) = first_null(label_col) {
            bail!(
                "{}: row {}: the label in column {label:?} is missing (null)",
                file.display(),
                row + 1
            );
        }
        let label_names = match problem_type {
            ProblemType::Regression => {
                if !(dtype.is_primitive_numeric()) {
                    bail!(
                        "{}: column {label:?} holds {dtype}; a regression's labels are numbers",
                        file.display()
                    );
                }
                vec![label.clone()]
            }
            ProblemType::SingleLabelClassification => {
                let keys: BTreeSet<Key> = class_keys(label_col, label, file)?.into_iter().collect();
                keys.iter().map(Key::name).collect()
            }
            ProblemType::TokenClassification
            | ProblemType::QuestionAnswering
            | ProblemType::MaskedLanguageModeling => bail!(
                "{}: token classification, question answering and masked language modelling \
                 read their own files (data::tagging, data::squad, a corpus), not a label \
                 column of a table",
                file.display()
            ),
            ProblemType::MultiLabelClassification => {
                let keys: BTreeSet<Key> = list_keys(label_col, label, file)?
                    .into_iter()
                    .flatten()
                    .collect();
                keys.iter().map(Key::name).collect()
            }
        };
        if problem_type != ProblemType::Regression && label_names.len() < 2 {
            bail!(
                "{}: column {label:?} holds a single label ({}); a classifier needs at least two",
                file.display(),
                label_names.join(", ")
            );
        }
        Ok(Task {
            text_columns,
            label_column: label.clone(),
            label_columns: Vec::new(),
            problem_type,
            label_names,
        })
    }

    /// A multi-label task whose labels are one 0/1 column each (`spec.label_columns`).
    fn infer_indicator_columns(frame: &DataFrame, spec: &TaskSpec, file: &Path) -> Result<Task> {
        if let Some(p) = spec.problem_type {
            if p != ProblemType::MultiLabelClassification {
                bail!(
                    "several label columns ({}) make a multi-label task, not {}",
                    spec.label_columns.join(", "),
                    p.name()
                );
            }
        }
        if spec.label_columns.len() < 2 {
            bail!(
                "one label column given as a list ({}); a multi-label task needs two or more",
                spec.label_columns.join(", ")
            );
        }
        for c in &spec.label_columns {
            column(frame, c, file)?;
        }
        let text_columns = if spec.text_columns.is_empty() {
            let others: Vec<String> = frame
                .get_column_names()
                .iter()
                .map(|n| n.to_string())
                .filter(|n| !spec.label_columns.contains(n))
                .take(1)
                .collect();
            if others.is_empty() {
                bail!(
                    "{}: no text column besides the label columns",
                    file.display()
                );
            }
            others
        } else {
            spec.text_columns.clone()
        };
        for c in &text_columns {
            column(frame, c, file)?;
        }
        let task = Task {
            text_columns,
            label_column: spec.label_columns.join(","),
            label_columns: spec.label_columns.clone(),
            problem_type: ProblemType::MultiLabelClassification,
            label_names: spec.label_columns.clone(),
        };
        task.indicator_rows(frame, file)?; // every cell 0 or 1, now, before any long work
        Ok(task)
    }

    /// The 0/1 indicator rows of a task read from one column per label.
    fn indicator_rows(&self, frame: &DataFrame, file: &Path) -> Result<Vec<Vec<f32>>> {
        let mut rows = vec![vec![0.0f32; self.label_columns.len()]; frame.height()];
        for (j, name) in self.label_columns.iter().enumerate() {
            let col = column(frame, name, file)?;
            if let Some(row) = first_null(col) {
                bail!(
                    "{}: row {}: the label in column {name:?} is missing (null)",
                    file.display(),
                    row + 1
                );
            }
            let values = col.cast(&DataType::Float64).map_err(|_| {
                anyhow!(
                    "{}: column {name:?} holds {}; a label column holds 0 or 1",
                    file.display(),
                    col.dtype()
                )
            })?;
            let values = values
                .f64()
                .map_err(|e| anyhow!("{}: column {name:?}: {e}", file.display()))?;
            for (r, v) in values.iter().enumerate() {
                match v {
                    Some(x) if x == 0.0 || x == 1.0 => rows[r][j] = x as f32,
                    other => bail!(
                        "{}: row {}: column {name:?} holds {}; a label column holds 0 or 1",
                        file.display(),
                        r + 1,
                        other.map_or("null".to_string(), |x| x.to_string())
                    ),
                }
            }
        }
        Ok(rows)
    }

    /// Outputs of the model's head: classes (or labels) for classification, 1 for regression.
    pub fn num_labels(&self) -> usize {
        match self.problem_type {
            ProblemType::Regression => 1,
            _ => self.label_names.len(),
        }
    }

    /// Whether the texts are pairs.
    pub fn is_pair(&self) -> bool {
        self.text_columns.len() == 2
    }

    fn class_id(&self, key: &Key, row: usize, file: &Path) -> Result<i64> {
        let name = key.name();
        self.label_names
            .iter()
            .position(|n| *n == name)
            .map(|i| i as i64)
            .ok_or_else(|| {
                anyhow!(
                    "{}: row {}: label {name:?} in column {:?} never appears in the training \
                     file (its labels: {})",
                    file.display(),
                    row + 1,
                    self.label_column,
                    self.label_names.join(", ")
                )
            })
    }

    /// The texts and labels of `frame` (the training file or another read the same way).
    pub fn examples(&self, frame: &DataFrame, file: &Path) -> Result<Examples> {
        let first = strings(frame, &self.text_columns[0], file, "text")?;
        let second = match self.text_columns.get(1) {
            Some(c) => Some(strings(frame, c, file, "text")?),
            None => None,
        };
        if !self.label_columns.is_empty() {
            return Ok(Examples {
                first,
                second,
                labels: Labels::MultiHot(self.indicator_rows(frame, file)?),
            });
        }
        let label = &self.label_column;
        let col = column(frame, label, file)?;
        if let Some(row) = first_null(col) {
            bail!(
                "{}: row {}: the label in column {label:?} is missing (null)",
                file.display(),
                row + 1
            );
        }
        let labels = match self.problem_type {
            ProblemType::Regression => {
                let values = col.cast(&DataType::Float64).map_err(|_| {
                    anyhow!(
                        "{}: column {label:?} holds {}; a regression's labels are numbers",
                        file.display(),
                        col.dtype()
                    )
                })?;
                let values = values
                    .f64()
                    .map_err(|e| anyhow!("{}: column {label:?}: {e}", file.display()))?;
                let mut out = Vec::with_capacity(values.len());
                for (r, v) in values.iter().enumerate() {
                    let v = v.unwrap_or(f64::NAN);
                    if !v.is_finite() {
                        bail!(
                            "{}: row {}: the label {v} in column {label:?} is not a finite number",
                            file.display(),
                            r + 1
                        );
                    }
                    out.push(v as f32);
                }
                Labels::Values(out)
            }
            ProblemType::SingleLabelClassification => {
                let keys = class_keys(col, label, file)?;
                Labels::Classes(
                    keys.iter()
                        .enumerate()
                        .map(|(r, k)| self.class_id(k, r, file))
                        .collect::<Result<_>>()?,
                )
            }
            ProblemType::TokenClassification
            | ProblemType::QuestionAnswering
            | ProblemType::MaskedLanguageModeling => bail!(
                "{}: token classification, question answering and masked language modelling \
                 read their own files (data::tagging, data::squad, a corpus), not a label \
                 column of a table",
                file.display()
            ),
            ProblemType::MultiLabelClassification => {
                let rows = list_keys(col, label, file)?;
                let mut out = Vec::with_capacity(rows.len());
                for (r, keys) in rows.iter().enumerate() {
                    let mut hot = vec![0.0f32; self.label_names.len()];
                    for k in keys {
                        hot[self.class_id(k, r, file)? as usize] = 1.0;
                    }
                    out.push(hot);
                }
                Labels::MultiHot(out)
            }
        };
        Ok(Examples {
            first,
            second,
            labels,
        })
    }
}
