//! `bert-finetune predict --file in.csv --out out.csv`: every row of a table through a saved
//! model, written back with the predictions as new columns (`predicted_label` and
//! `predicted_score`; a multi-label model also gets one `probability_<label>` column per
//! label) after the input's own, which are kept as they were.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use bert_finetune::data::table::{read_table, write_table};
use bert_finetune::data::task::Task;
use bert_finetune::model::{predict, pretrained};
use bert_finetune::polars::prelude::*;
use bert_finetune::runtime::device;

/// The text columns to read: given, else the ones the model was trained on (its run's
/// `summary.json`), else run_glue's names.
fn text_columns(model_dir: &Path, given: &[String], frame: &DataFrame) -> Result<Vec<String>> {
    if !given.is_empty() {
        return Ok(given.to_vec());
    }
    let summary = model_dir.join("summary.json");
    if let Ok(text) = std::fs::read_to_string(&summary) {
        let value: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", summary.display()))?;
        if let Some(task) = value.get("task") {
            let task: Task = serde_json::from_value(task.clone())
                .with_context(|| format!("{}: its task", summary.display()))?;
            return Ok(task.text_columns);
        }
    }
    let has = |c: &str| frame.column(c).is_ok();
    Ok(if has("sentence1") && has("sentence2") {
        vec!["sentence1".into(), "sentence2".into()]
    } else if has("sentence") {
        vec!["sentence".into()]
    } else if has("text") {
        vec!["text".into()]
    } else {
        bail!("say which column holds the text: --text-columns NAME (or two for pairs)")
    })
}

fn strings(frame: &DataFrame, name: &str, file: &Path) -> Result<Vec<String>> {
    let col = frame.column(name).map_err(|_| {
        let names: Vec<String> = frame
            .get_column_names()
            .iter()
            .map(|n| n.to_string())
            .collect();
        anyhow!(
            "{}: no column {name:?}; its columns are {}",
            file.display(),
            names.join(", ")
        )
    })?;
    let text = col
        .cast(&DataType::String)
        .map_err(|e| anyhow!("{}: column {name:?}: {e}", file.display()))?;
    let text = text
        .str()
        .map_err(|e| anyhow!("{}: column {name:?}: {e}", file.display()))?;
    text.iter()
        .enumerate()
        .map(|(r, v)| {
            v.map(str::to_string).ok_or_else(|| {
                anyhow!(
                    "{}: row {}: the text in column {name:?} is missing (null)",
                    file.display(),
                    r + 1
                )
            })
        })
        .collect()
}

/// `--out` must not be the input file (under any spelling of its path): writing there would
/// lose the input. Every `predict --file` checks it first, whatever the model's head.
pub fn refuse_the_input_as_output(file: &Path, out: &Path) -> Result<()> {
    let same = match (file.canonicalize(), out.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same {
        bail!(
            "--out {}: that is the input file; write the predictions elsewhere",
            out.display()
        );
    }
    Ok(())
}

pub fn run(model_dir: &str, file: &Path, out: &Path, given: &[String]) -> Result<()> {
    let mut frame = read_table(file, None)?;
    let columns = text_columns(Path::new(model_dir), given, &frame)?;
    if columns.is_empty() || columns.len() > 2 {
        bail!("--text-columns: give one column, or two for pairs");
    }
    let first = strings(&frame, &columns[0], file)?;
    let second = match columns.get(1) {
        Some(c) => Some(strings(&frame, c, file)?),
        None => None,
    };
    let tokenizer = pretrained::load_tokenizer(model_dir)?;
    let model = pretrained::load_classifier(model_dir, device::choose())?;
    pretrained::check_vocabulary(&tokenizer, &model)?;
    let predictions = predict::predict(&model, &tokenizer, &first, second.as_deref())?;
    let labels: Vec<&str> = predictions.rows.iter().map(|p| p.label.as_str()).collect();
    let scores: Vec<f64> = predictions.rows.iter().map(|p| p.score).collect();
    let taken = |name: &str| frame.column(name).is_ok();
    if taken("predicted_label") || taken("predicted_score") {
        bail!(
            "{}: it already has a predicted_label or predicted_score column",
            file.display()
        );
    }
    let mut added = vec![
        Column::new("predicted_label".into(), labels),
        Column::new("predicted_score".into(), scores),
    ];
    let width = predictions
        .rows
        .first()
        .map_or(0, |p| p.probabilities.len());
    for j in 0..width {
        let name = format!("probability_{}", model.config.label_name(j));
        let values: Vec<f64> = predictions
            .rows
            .iter()
            .map(|p| p.probabilities[j])
            .collect();
        added.push(Column::new(name.as_str().into(), values));
    }
    for c in added {
        frame
            .with_column(c)
            .map_err(|e| anyhow!("cannot add the predictions: {e}"))?;
    }
    write_table(&mut frame, out, None)?;
    println!(
        "{} rows of {} predicted ({}); written to {}",
        frame.height(),
        file.display(),
        predictions.problem_type.name(),
        out.display()
    );
    Ok(())
}
