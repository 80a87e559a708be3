//! Token-classification data, as Hugging Face's `run_ner.py` reads and prepares it: sentences
//! as lists of words with one tag each, from JSON lines / JSON (`tokens` and `ner_tags`, else
//! the first two fields) or the CoNLL-2003 text format (one `word … tag` line per word, blank
//! lines between sentences, `-DOCSTART-` skipped); and each sentence's tags aligned to its word
//! pieces (the first piece of a word gets the word's tag, later pieces and `[CLS]`/`[SEP]`
//! [`IGNORE_INDEX`], or with `label_all_tokens` the word's tag with `B-` turned into `I-`).
//!
//! Every problem with a file is an error naming the file, the line (JSON lines and CoNLL, 1-based)
//! or sentence, and the field.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use super::tokenizer::BertTokenizer;

/// The label of a position the loss does not read (PyTorch's `ignore_index`).
pub const IGNORE_INDEX: i64 = -100;

/// One sentence: its words and their tags, as many of one as of the other.
#[derive(Debug, Clone, PartialEq)]
pub struct TaggedSentence {
    pub words: Vec<String>,
    pub tags: Vec<String>,
}

/// Which fields of a JSON record hold the words and the tags (run_ner's `--text_column_name`,
/// `--label_column_name`); `None` picks `tokens` / `ner_tags`, else the first two fields.
#[derive(Debug, Clone, Default)]
pub struct TaggedColumns {
    pub words: Option<String>,
    pub tags: Option<String>,
}

/// How a token-classification file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaggedFormat {
    /// CoNLL-2003 text: one `word ... tag` line per word, blank lines between sentences.
    Conll,
    /// JSON lines or a JSON array of records with a list of words and a list of tags.
    Json,
}

impl TaggedFormat {
    /// The format a file's extension names: `.conll`, `.iob`, `.txt` or `.json`, `.jsonl`.
    pub fn of(file: &Path) -> Result<Self> {
        match super::table::extension(file).as_str() {
            "conll" | "iob" | "txt" => Ok(TaggedFormat::Conll),
            "json" | "jsonl" => Ok(TaggedFormat::Json),
            other => bail!(
                "{}: cannot tell the format from the extension {other:?}; token-classification \
                 files are .conll (CoNLL-2003 text) or .json / .jsonl (a list of words and a \
                 list of tags per record), or name it with --format conll",
                file.display()
            ),
        }
    }
}

/// The tagged sentences of a file, by its extension (see [`TaggedFormat::of`]). Integer tags
/// are named by `tag_names` when given (a model's `id2label`), else kept as their numbers.
pub fn read_tagged(
    file: &Path,
    columns: &TaggedColumns,
    tag_names: Option<&[String]>,
) -> Result<Vec<TaggedSentence>> {
    read_tagged_as(file, None, columns, tag_names)
}

/// [`read_tagged`] in `format` when given (`--format conll` for a CoNLL file under another
/// extension), else the one the extension names.
pub fn read_tagged_as(
    file: &Path,
    format: Option<TaggedFormat>,
    columns: &TaggedColumns,
    tag_names: Option<&[String]>,
) -> Result<Vec<TaggedSentence>> {
    let format = match format {
        Some(f) => f,
        None => TaggedFormat::of(file)?,
    };
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read {} as UTF-8 text", file.display()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let sentences = match format {
        TaggedFormat::Conll => parse_conll(text, file)?,
        TaggedFormat::Json => parse_json(text, file, columns, tag_names)?,
    };
    if sentences.is_empty() {
        bail!("{} holds no sentences", file.display());
    }
    Ok(sentences)
}

/// CoNLL-2003 text: the word is the first column and the tag the last, columns separated by
/// spaces or tabs.
pub fn parse_conll(text: &str, file: &Path) -> Result<Vec<TaggedSentence>> {
    let mut sentences = Vec::new();
    let mut current = TaggedSentence {
        words: Vec::new(),
        tags: Vec::new(),
    };
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with("-DOCSTART-") {
            if !current.words.is_empty() {
                sentences.push(std::mem::replace(
                    &mut current,
                    TaggedSentence {
                        words: Vec::new(),
                        tags: Vec::new(),
                    },
                ));
            }
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 2 {
            bail!(
                "{} line {}: {line:?} has one column; a CoNLL line is `word … tag` (the word \
                 first, the tag last)",
                file.display(),
                n + 1
            );
        }
        current.words.push(fields[0].to_string());
        current.tags.push(fields[fields.len() - 1].to_string());
    }
    if !current.words.is_empty() {
        sentences.push(current);
    }
    Ok(sentences)
}

/// JSON lines (one record a line) or a JSON array of records.
fn parse_json(
    text: &str,
    file: &Path,
    columns: &TaggedColumns,
    tag_names: Option<&[String]>,
) -> Result<Vec<TaggedSentence>> {
    let records: Vec<(String, Value)> = if text.trim_start().starts_with('[') {
        let all: Vec<Value> = serde_json::from_str(text)
            .map_err(|e| anyhow!("{}: not valid JSON: {e}", file.display()))?;
        all.into_iter()
            .enumerate()
            .map(|(i, v)| (format!("record {}", i + 1), v))
            .collect()
    } else {
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(n, l)| {
                let v = serde_json::from_str(l).map_err(|e| {
                    anyhow!("{} line {}: not valid JSON: {e}", file.display(), n + 1)
                })?;
                Ok((format!("line {}", n + 1), v))
            })
            .collect::<Result<_>>()?
    };
    let mut out = Vec::with_capacity(records.len());
    for (at, record) in records {
        let Value::Object(fields) = &record else {
            bail!("{} {at}: a record must be a JSON object", file.display());
        };
        let pick = |chosen: &Option<String>, default: &str, position: usize| -> Result<String> {
            if let Some(name) = chosen {
                return Ok(name.clone());
            }
            if fields.contains_key(default) {
                return Ok(default.to_string());
            }
            fields.keys().nth(position).cloned().ok_or_else(|| {
                anyhow!(
                    "{} {at}: no `{default}` field and fewer than two fields to choose from",
                    file.display()
                )
            })
        };
        let words_key = pick(&columns.words, "tokens", 0)?;
        let tags_key = pick(&columns.tags, "ner_tags", 1)?;
        let list = |key: &str| -> Result<&Vec<Value>> {
            match fields.get(key) {
                Some(Value::Array(items)) => Ok(items),
                Some(_) => bail!("{} {at}: field `{key}` must be a list", file.display()),
                None => bail!(
                    "{} {at}: no field `{key}` (the record has {})",
                    file.display(),
                    fields.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            }
        };
        let words = list(&words_key)?
            .iter()
            .map(|w| match w {
                Value::String(s) => Ok(s.clone()),
                other => bail!(
                    "{} {at}: `{words_key}` holds {other}, not a word",
                    file.display()
                ),
            })
            .collect::<Result<Vec<_>>>()?;
        let tags = list(&tags_key)?
            .iter()
            .map(|t| match t {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => {
                    let id = n.as_u64().ok_or_else(|| {
                        anyhow!(
                            "{} {at}: `{tags_key}` holds {n}, not a tag id",
                            file.display()
                        )
                    })?;
                    Ok(match tag_names {
                        Some(names) => names.get(id as usize).cloned().ok_or_else(|| {
                            anyhow!(
                                "{} {at}: tag id {id} in `{tags_key}`, but there are {} tag names",
                                file.display(),
                                names.len()
                            )
                        })?,
                        None => id.to_string(),
                    })
                }
                other => bail!(
                    "{} {at}: `{tags_key}` holds {other}, not a tag",
                    file.display()
                ),
            })
            .collect::<Result<Vec<_>>>()?;
        if words.len() != tags.len() {
            bail!(
                "{} {at}: {} words in `{words_key}` but {} tags in `{tags_key}`",
                file.display(),
                words.len(),
                tags.len()
            );
        }
        if !words.is_empty() {
            out.push(TaggedSentence { words, tags });
        }
    }
    Ok(out)
}

/// The tag names of a training set, sorted as run_ner sorts string labels.
pub fn tag_names(sentences: &[TaggedSentence]) -> Vec<String> {
    sentences
        .iter()
        .flat_map(|s| s.tags.iter().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Each sentence's tags as ids of `names`; a tag outside them is an error naming the file,
/// the sentence and the tag (a test file's tag that training never saw).
pub fn tag_ids(
    sentences: &[TaggedSentence],
    names: &[String],
    file: &Path,
) -> Result<Vec<Vec<i64>>> {
    sentences
        .iter()
        .enumerate()
        .map(|(s, sentence)| {
            ids_of_tags(
                &sentence.tags,
                names,
                &format!("{} sentence {}", file.display(), s + 1),
            )
        })
        .collect()
}

/// One sentence's `tags` as ids of `names` (a model's tags in id order); a tag outside them
/// is an error that starts with `at` (where the sentence comes from) and names the tag.
pub fn ids_of_tags(tags: &[String], names: &[String], at: &str) -> Result<Vec<i64>> {
    tags.iter()
        .map(|tag| {
            names
                .iter()
                .position(|n| n == tag)
                .map(|i| i as i64)
                .ok_or_else(|| {
                    anyhow!(
                        "{at}: tag {tag:?} is not among the model's tags ({})",
                        names.join(", ")
                    )
                })
        })
        .collect()
}

/// For `label_all_tokens`: the id of each tag's `I-` form (`B-PER` → `I-PER` when the names
/// have it), as run_ner's `b_to_i_label`.
pub fn b_to_i(names: &[String]) -> Vec<i64> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            name.strip_prefix("B-")
                .and_then(|kind| names.iter().position(|n| *n == format!("I-{kind}")))
                .unwrap_or(i) as i64
        })
        .collect()
}

/// One sentence ready for the model: word-piece ids, a label per piece, which word each piece
/// comes from, and how many words lost their first piece to `max_len`.
#[derive(Debug, Clone, PartialEq)]
pub struct AlignedSentence {
    pub ids: Vec<i64>,
    pub labels: Vec<i64>,
    pub word_ids: Vec<Option<u32>>,
    pub words_cut: usize,
}

/// Tokenizes `words`, cuts the pieces to `max_len` with `[SEP]` kept last (transformers'
/// `truncation=True`), and aligns `word_labels` to the pieces as run_ner's
/// `tokenize_and_align_labels` does.
pub fn align(
    tokenizer: &BertTokenizer,
    words: &[impl AsRef<str>],
    word_labels: &[i64],
    max_len: usize,
    label_all_tokens: Option<&[i64]>,
) -> Result<AlignedSentence> {
    if max_len < 3 {
        bail!("max_len {max_len} leaves no room for a word between [CLS] and [SEP]");
    }
    if words.len() != word_labels.len() {
        bail!("{} words but {} labels", words.len(), word_labels.len());
    }
    let (mut ids, mut word_ids) = tokenizer.encode_words(words)?;
    if ids.len() > max_len {
        let sep = ids[ids.len() - 1];
        ids.truncate(max_len - 1);
        ids.push(sep);
        word_ids.truncate(max_len - 1);
        word_ids.push(None);
    }
    let kept: BTreeSet<u32> = word_ids.iter().flatten().copied().collect();
    let words_cut = words.len() - kept.len();
    let mut labels = Vec::with_capacity(ids.len());
    let mut previous = None;
    for &word in &word_ids {
        labels.push(match word {
            None => IGNORE_INDEX,
            Some(w) if Some(w) != previous => word_labels[w as usize],
            Some(w) => match label_all_tokens {
                Some(b_to_i) => b_to_i[word_labels[w as usize] as usize],
                None => IGNORE_INDEX,
            },
        });
        previous = word;
    }
    Ok(AlignedSentence {
        ids,
        labels,
        word_ids,
        words_cut,
    })
}
