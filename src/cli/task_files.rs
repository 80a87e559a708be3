//! Which task a `--train-file` holds, told from the file as run_ner / run_qa users expect:
//! tagged words ([`is_tagging_file`]), questions about contexts ([`is_squad_file`]), or else a
//! table for sequence classification. Only the first record is read when the file has one a
//! line, so telling costs nothing next to reading the file for training.

use std::io::{BufRead, BufReader};
use std::path::Path;

use anyhow::{bail, Result};
use serde_json::Value;

use bert_finetune::data::table::extension;
use bert_finetune::data::tagging::TaggedFormat;

/// `--format` for a token-classification file: `conll` names CoNLL text whatever the
/// extension; `jsonl`/`json` name records; nothing leaves it to the extension.
pub fn tagged_format(format: Option<&str>) -> Result<Option<TaggedFormat>> {
    Ok(match format.map(str::to_ascii_lowercase).as_deref() {
        None => None,
        Some("conll") | Some("iob") => Some(TaggedFormat::Conll),
        Some("jsonl") | Some("json") => Some(TaggedFormat::Json),
        Some(other) => {
            bail!("--format {other}: a token-classification file is conll or jsonl (json)")
        }
    })
}

/// True when `--format` names the CoNLL text format, so the file holds tagged words whatever
/// its extension.
pub fn is_conll_format(format: Option<&str>) -> bool {
    format.is_some_and(|f| f.eq_ignore_ascii_case("conll") || f.eq_ignore_ascii_case("iob"))
}

/// The file's first JSON value: its first line when that line is one (JSON lines, or a JSON
/// document on one line), else the whole file (a pretty-printed document). `None` when
/// neither parses.
fn first_value(file: &Path) -> Option<Value> {
    let mut lines = BufReader::new(std::fs::File::open(file).ok()?).lines();
    let first = lines.find_map(|l| l.ok().filter(|l| !l.trim().is_empty()))?;
    let first = first.trim_start_matches('\u{feff}');
    serde_json::from_str(first).ok().or_else(|| {
        let text = std::fs::read_to_string(file).ok()?;
        serde_json::from_str(text.trim_start_matches('\u{feff}')).ok()
    })
}

/// The first record: the first element of an array, else the value itself.
fn first_record(value: &Value) -> Option<&Value> {
    match value {
        Value::Array(items) => items.first(),
        other => Some(other),
    }
}

/// True when `file` holds tagged words rather than a table: a CoNLL file by its extension
/// (`.conll`, `.iob`), or JSON whose first record has a list of words and a list of tags
/// (`tokens` and `ner_tags`, else its first two fields).
pub fn is_tagging_file(file: &Path) -> bool {
    match extension(file).as_str() {
        "conll" | "iob" => true,
        "json" | "jsonl" => first_value(file).is_some_and(|value| {
            let Some(Value::Object(fields)) = first_record(&value) else {
                return false;
            };
            let lists: Vec<&Value> = match (fields.get("tokens"), fields.get("ner_tags")) {
                (Some(w), Some(t)) => vec![w, t],
                _ => fields.values().take(2).collect(),
            };
            lists.len() == 2 && lists.iter().all(|v| v.is_array())
        }),
        _ => false,
    }
}

/// True when `file` holds questions: JSON with SQuAD's `data` list, or records (JSON lines or
/// an array) with `question`, `context` and `answers`.
pub fn is_squad_file(file: &Path) -> bool {
    if !matches!(extension(file).as_str(), "json" | "jsonl") {
        return false;
    }
    first_value(file).is_some_and(|value| {
        value.get("data").is_some_and(Value::is_array)
            || first_record(&value).is_some_and(|r| {
                ["question", "context", "answers"]
                    .iter()
                    .all(|k| r.get(k).is_some())
            })
    })
}
