//! Extractive question answering data, as Hugging Face's `run_qa.py` reads and prepares it:
//! examples from SQuAD's official nested JSON (v1.1, v2.0) or flat records (`id`, `context`,
//! `question`, `answers: {text, answer_start}`) as JSON lines or a JSON array, told apart by
//! their content; then each example cut into windows of `max_len` tokens overlapping by
//! `stride` ([`features`]), with the answer's first and last token in each window, or `[CLS]`
//! where the window does not hold the whole answer.
//!
//! An `answer_start` that does not point at its answer's text is an error naming the question
//! id (transformers would train on the wrong span without a word), as are an empty context and
//! a question that leaves no room for the context.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use super::tokenizer::BertTokenizer;

/// One gold answer: its text and where it starts in the context, in characters.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub text: String,
    pub start: usize,
}

/// A question about a context, with its gold answers (none: unanswerable, SQuAD v2).
#[derive(Debug, Clone, PartialEq)]
pub struct QaExample {
    pub id: String,
    pub question: String,
    pub context: String,
    pub answers: Vec<Answer>,
}

/// The examples of a SQuAD file, nested or flat, each answer checked against its context.
pub fn read_squad(file: &Path) -> Result<Vec<QaExample>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read {} as UTF-8 text", file.display()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let trimmed = text.trim_start();
    let examples = if trimmed.starts_with('{') && !trimmed.contains("\n{") {
        // One object: SQuAD's official layout ({"version", "data": [...]}) or a one-line file.
        let value: Value = serde_json::from_str(text)
            .map_err(|e| anyhow!("{}: not valid JSON: {e}", file.display()))?;
        if value.get("data").is_some() {
            nested(&value, file)?
        } else {
            vec![flat(&value, file, "line 1")?]
        }
    } else if trimmed.starts_with('[') {
        let all: Vec<Value> = serde_json::from_str(text)
            .map_err(|e| anyhow!("{}: not valid JSON: {e}", file.display()))?;
        all.iter()
            .enumerate()
            .map(|(i, v)| flat(v, file, &format!("record {}", i + 1)))
            .collect::<Result<_>>()?
    } else {
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(n, l)| {
                let v: Value = serde_json::from_str(l).map_err(|e| {
                    anyhow!("{} line {}: not valid JSON: {e}", file.display(), n + 1)
                })?;
                flat(&v, file, &format!("line {}", n + 1))
            })
            .collect::<Result<_>>()?
    };
    if examples.is_empty() {
        bail!("{} holds no questions", file.display());
    }
    for example in &examples {
        check(example, file)?;
    }
    Ok(examples)
}

fn string(v: &Value, key: &str, file: &Path, at: &str) -> Result<String> {
    match v.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => bail!("{} {at}: `{key}` is {other}, not text", file.display()),
        None => bail!("{} {at}: no field `{key}`", file.display()),
    }
}

fn index(v: &Value, file: &Path, at: &str) -> Result<usize> {
    v.as_u64().map(|n| n as usize).ok_or_else(|| {
        anyhow!(
            "{} {at}: answer_start {v} is not a character index",
            file.display()
        )
    })
}

/// SQuAD's official layout: data → paragraphs → qas.
fn nested(value: &Value, file: &Path) -> Result<Vec<QaExample>> {
    let mut out = Vec::new();
    let articles = value["data"]
        .as_array()
        .ok_or_else(|| anyhow!("{}: `data` must be a list of articles", file.display()))?;
    for article in articles {
        for paragraph in article["paragraphs"].as_array().into_iter().flatten() {
            let context = string(paragraph, "context", file, "paragraph")?;
            for qa in paragraph["qas"].as_array().into_iter().flatten() {
                let id = string(qa, "id", file, "question")?;
                let at = format!("question {id}");
                let question = string(qa, "question", file, &at)?;
                let impossible = qa["is_impossible"].as_bool().unwrap_or(false);
                let answers = if impossible {
                    Vec::new()
                } else {
                    qa["answers"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|a| {
                            Ok(Answer {
                                text: string(a, "text", file, &at)?,
                                start: index(&a["answer_start"], file, &at)?,
                            })
                        })
                        .collect::<Result<_>>()?
                };
                out.push(QaExample {
                    id,
                    question,
                    context: context.clone(),
                    answers,
                });
            }
        }
    }
    Ok(out)
}

/// Hugging Face's flat record: `answers` is `{"text": [...], "answer_start": [...]}`.
fn flat(v: &Value, file: &Path, at: &str) -> Result<QaExample> {
    let id = match v.get("id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => bail!("{} {at}: no field `id`", file.display()),
    };
    let at = format!("{at} (question {id})");
    let texts = v["answers"]["text"].as_array();
    let starts = v["answers"]["answer_start"].as_array();
    let answers = match (texts, starts) {
        // Questions to answer (predict --file) may come without answers.
        _ if v.get("answers").is_none() => Vec::new(),
        (Some(texts), Some(starts)) if texts.len() == starts.len() => texts
            .iter()
            .zip(starts)
            .map(|(t, s)| {
                Ok(Answer {
                    text: t
                        .as_str()
                        .ok_or_else(|| anyhow!("{} {at}: an answer text is {t}", file.display()))?
                        .to_string(),
                    start: index(s, file, &at)?,
                })
            })
            .collect::<Result<_>>()?,
        (Some(t), Some(s)) => bail!(
            "{} {at}: {} answer texts but {} answer_start values",
            file.display(),
            t.len(),
            s.len()
        ),
        _ => bail!(
            "{} {at}: `answers` must be {{\"text\": [...], \"answer_start\": [...]}}",
            file.display()
        ),
    };
    Ok(QaExample {
        question: string(v, "question", file, &at)?,
        context: string(v, "context", file, &at)?,
        id,
        answers,
    })
}

/// A seeded share `fraction` of the examples held out for validation, whole questions at a time
/// (so no question has windows on both sides), the rest kept in their order: what
/// `train --train-file` does without a validation file.
pub fn hold_out(
    examples: Vec<QaExample>,
    fraction: f64,
    seed: u64,
) -> (Vec<QaExample>, Vec<QaExample>) {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let mut order: Vec<usize> = (0..examples.len()).collect();
    order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    let n_val = ((examples.len() as f64) * fraction).ceil() as usize;
    let held: std::collections::BTreeSet<usize> =
        order[..n_val.min(order.len())].iter().copied().collect();
    let (mut keep, mut val) = (Vec::new(), Vec::new());
    for (i, e) in examples.into_iter().enumerate() {
        if held.contains(&i) {
            val.push(e)
        } else {
            keep.push(e)
        }
    }
    (keep, val)
}

/// The context's characters from `start`, as many as the answer has, equal its text.
fn check(example: &QaExample, file: &Path) -> Result<()> {
    if example.context.trim().is_empty() {
        bail!(
            "{} question {}: the context is empty",
            file.display(),
            example.id
        );
    }
    for answer in &example.answers {
        let n = answer.text.chars().count();
        let found: String = example.context.chars().skip(answer.start).take(n).collect();
        if found != answer.text {
            bail!(
                "{} question {}: answer_start {} points at {found:?} in the context, not at the \
                 answer {:?}",
                file.display(),
                example.id,
                answer.start,
                answer.text
            );
        }
    }
    Ok(())
}

/// One window of one example, ready for the model and for turning logits back into text.
#[derive(Debug, Clone, PartialEq)]
pub struct QaFeature {
    /// Index of its example in the list given to [`features`].
    pub example: usize,
    pub ids: Vec<i64>,
    pub type_ids: Vec<i64>,
    /// Character span in the context of each token; `None` outside the context (question,
    /// specials), where no answer may start or end.
    pub offsets: Vec<Option<(usize, usize)>>,
    /// The first answer's first and last token in this window; both `[CLS]` (0) when the
    /// window does not hold all of it, or the question has no answer.
    pub start: i64,
    pub end: i64,
}

/// The windows of every example as run_qa's `prepare_train_features` /
/// `prepare_validation_features` make them (leading spaces of the question dropped).
pub fn features(
    tokenizer: &BertTokenizer,
    examples: &[QaExample],
    max_len: usize,
    stride: usize,
) -> Result<Vec<QaFeature>> {
    let mut out = Vec::new();
    for (e, example) in examples.iter().enumerate() {
        let question = example.question.trim_start();
        let windows = tokenizer
            .encode_windows(question, &example.context, max_len, stride)
            .with_context(|| {
                format!(
                    "question {}: the question leaves no room for the context in --max-len \
                     {max_len} with --doc-stride {stride}",
                    example.id
                )
            })?;
        for w in windows {
            let offsets: Vec<Option<(usize, usize)>> = w
                .offsets
                .iter()
                .zip(&w.sequence_ids)
                .map(|(o, s)| (*s == Some(1)).then_some(*o))
                .collect();
            let (start, end) = match example.answers.first() {
                None => (0, 0),
                Some(answer) => span(&offsets, answer),
            };
            out.push(QaFeature {
                example: e,
                ids: w.ids,
                type_ids: w.type_ids,
                offsets,
                start,
                end,
            });
        }
    }
    Ok(out)
}

/// The answer's first and last token in a window, or `[CLS]` twice when the window's context
/// does not cover all of it.
fn span(offsets: &[Option<(usize, usize)>], answer: &Answer) -> (i64, i64) {
    let (start_char, end_char) = (answer.start, answer.start + answer.text.chars().count());
    let context: Vec<usize> = (0..offsets.len())
        .filter(|&i| offsets[i].is_some())
        .collect();
    let (Some(&first), Some(&last)) = (context.first(), context.last()) else {
        return (0, 0);
    };
    let (first_offset, last_offset) = (
        offsets[first].unwrap_or_default(),
        offsets[last].unwrap_or_default(),
    );
    if !(first_offset.0 <= start_char && last_offset.1 >= end_char) {
        return (0, 0);
    }
    let mut s = first;
    while s <= last && offsets[s].is_some_and(|o| o.0 <= start_char) {
        s += 1;
    }
    let mut t = last;
    while t >= first && offsets[t].is_some_and(|o| o.1 >= end_char) {
        t -= 1;
    }
    (s as i64 - 1, t as i64 + 1)
}
