//! `bert-finetune train --train-file FILE` when the file holds words and their tags (CoNLL-2003
//! text, or JSON lines / JSON records with a list of words and a list of tags): token
//! classification as Hugging Face's `run_ner.py` runs it, on the same [`fit`] as every other
//! run. The tags are the training file's, sorted; the validation and test files may hold no
//! other tag, which is checked (naming the file and the sentence) before training starts.
//! Validation and test report seqeval's entity precision, recall and F1 per type and overall.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use bert_finetune::data::tagging::{
    b_to_i, read_tagged_as, tag_ids, tag_names, TaggedColumns, TaggedSentence,
};
use bert_finetune::data::tokenizer::Padding;
use bert_finetune::data::EncodedSet;
use bert_finetune::model::{entities, pretrained, BertForTokenClassification};
use bert_finetune::runtime::display::thousands;
use bert_finetune::train::TrainConfig;

use super::fit::{check_own_run, fit, hold_out, save_run};
use super::own_data::OwnData;
use super::task_files;
use super::Common;

/// Which fields hold the words and the tags: `--text-columns` and `--label-column` when
/// given (the latter's default, `label`, means "not given" here).
fn columns(own: &OwnData) -> TaggedColumns {
    TaggedColumns {
        words: own.text_columns.first().cloned(),
        tags: match own.label_column.as_slice() {
            [one] if one != "label" => Some(one.clone()),
            _ => None,
        },
    }
}

/// Each sentence's words, and its tags as ids of the training file's tags.
type WordsAndTags = (Vec<Vec<String>>, Vec<Vec<i64>>);

fn words_and_ids(
    sentences: &[TaggedSentence],
    names: &[String],
    file: &Path,
) -> Result<WordsAndTags> {
    let ids = tag_ids(sentences, names, file)?;
    Ok((sentences.iter().map(|s| s.words.clone()).collect(), ids))
}

pub fn run(
    common: &Common,
    own: &OwnData,
    config: TrainConfig,
    limit: Option<usize>,
    out: &Path,
    resume: bool,
) -> Result<()> {
    if common.max_len < 3 {
        bail!(
            "--max-len {}: a sentence needs room for [CLS], a word and [SEP]",
            common.max_len
        );
    }
    check_own_run(&config, own.validation_split, out, resume)?;
    let columns = columns(own);
    let format = task_files::tagged_format(own.format.as_deref())?;
    let read = |file: &Path| read_tagged_as(file, format, &columns, None);
    let train_file = own
        .train_file
        .as_deref()
        .context("--train-file is missing")?;
    let train = read(train_file)?;
    let names = tag_names(&train);
    let (train_words, train_tags) = words_and_ids(&train, &names, train_file)?;
    // Every file is read and its tags checked before the long work starts.
    let validation = match &own.validation_file {
        Some(file) => Some(words_and_ids(&read(file)?, &names, file)?),
        None => None,
    };
    let test = match &own.test_file {
        Some(file) => Some((file.clone(), words_and_ids(&read(file)?, &names, file)?)),
        None => None,
    };

    let (device, model_name) = common.announce()?;
    say!(
        "Task: token classification, {} tags: {}",
        names.len(),
        names.join(", ")
    );
    bert_finetune::runtime::device::manual_seed(common.seed);
    let tokenizer = pretrained::load_tokenizer(&model_name)?;
    let padding = Padding::from(common.padding);
    let all_tokens = own.label_all_tokens.then(|| b_to_i(&names));
    let encode = |(words, tags): &WordsAndTags, padding: Padding| {
        EncodedSet::tagged(
            &tokenizer,
            words,
            tags,
            common.max_len,
            padding,
            all_tokens.as_deref(),
        )
    };
    let all = encode(&(train_words, train_tags), padding)
        .with_context(|| format!("{}", train_file.display()))?;
    let validation = validation
        .as_ref()
        .map(|v| encode(v, padding))
        .transpose()?;
    let (train_set, val_set) = hold_out(
        all,
        validation,
        own.validation_split,
        common.seed,
        limit,
        "sentences",
    )?;
    let cut = train_set.truncated();
    if cut > 0 {
        say!(
            "{} of {} training sentences are longer than --max-len {} word pieces: their last \
             words were cut and are not trained on",
            thousands(cut),
            thousands(train_set.len()),
            common.max_len
        );
    }
    let mut model = BertForTokenClassification::from_pretrained(&model_name, names.len(), device)?;
    model.config.set_labels(&names);
    pretrained::check_vocabulary(&tokenizer, &model)?;
    let (trainer, history) = fit(model, config, train_set, val_set, out, resume)?;

    let mut summary = serde_json::json!({
        "model": model_name,
        "task": "token_classification",
        "tags": names,
        "train_size": trainer.train_set().len(),
        "train_truncated": history.train_truncated,
        "validation_metrics": history.epochs.iter().map(|e| &e.val_metrics).collect::<Vec<_>>(),
        "best": history.best,
        "stopped_early": history.stopped_early,
        "training_seconds": history.total_seconds,
    });
    if let Some((file, sentences)) = &test {
        let test_set = encode(sentences, Padding::Longest)?;
        say!(
            "\nScoring {} sentences of {}...",
            thousands(test_set.len()),
            file.display()
        );
        let scored = trainer.evaluate(&test_set, common.batch_size)?;
        if super::first_rank() {
            print!("{}", super::scores::report(&scored, &names));
        }
        let metrics = scored.metrics();
        for (k, v) in &metrics {
            summary[format!("test_{k}")] = (*v).into();
        }
        summary["test_metrics"] = serde_json::to_value(&metrics)?;
        if let Some(entities) = scored.entities() {
            summary["test_entities"] = entities
                .by_type
                .iter()
                .map(|(kind, s)| {
                    (
                        kind.clone(),
                        serde_json::json!({"precision": s.precision, "recall": s.recall,
                                           "f1": s.f1, "support": s.support}),
                    )
                })
                .collect::<serde_json::Map<_, _>>()
                .into();
        }
    }
    save_run(&trainer, &tokenizer, &history, &summary, out)?;
    say!("\n{history}\n\nSaved to {}", out.display());
    Ok(())
}

/// `predict --file in --out out` with a token classifier: every word's predicted tag, added to
/// what the input holds. CoNLL in, CoNLL out with the tag as a new last column (blank and
/// `-DOCSTART-` lines kept); JSON lines or a JSON array in, the same records with a
/// `predicted_tags` list (JSON lines out unless `out` ends in `.json`).
pub fn predict_file(model_dir: &str, file: &Path, out: &Path) -> Result<()> {
    let device = bert_finetune::runtime::device::choose();
    let tokenizer = pretrained::load_tokenizer(model_dir)?;
    let tagger = BertForTokenClassification::from_pretrained(model_dir, None, device)?;
    pretrained::check_vocabulary(&tokenizer, &tagger)?;
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read {} as UTF-8 text", file.display()))?;
    let ext = |p: &Path| {
        p.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default()
    };
    let written = if matches!(ext(file).as_str(), "conll" | "iob" | "txt") {
        // Sentences as the line numbers of their words.
        let lines: Vec<&str> = text.lines().collect();
        let mut sentences: Vec<Vec<usize>> = vec![Vec::new()];
        for (i, line) in lines.iter().enumerate() {
            if line.trim().is_empty() || line.starts_with("-DOCSTART-") {
                sentences.push(Vec::new());
            } else if let Some(s) = sentences.last_mut() {
                s.push(i);
            }
        }
        sentences.retain(|s| !s.is_empty());
        let words: Vec<Vec<String>> = sentences
            .iter()
            .map(|s| {
                s.iter()
                    .map(|&i| lines[i].split_whitespace().next().unwrap_or("").to_string())
                    .collect()
            })
            .collect();
        let tags = entities::predict_word_tags(&tagger, &tokenizer, &words)?;
        let mut tag_of = vec![None; lines.len()];
        for (s, t) in sentences.iter().zip(&tags) {
            for (&i, tag) in s.iter().zip(t) {
                tag_of[i] = Some(tag.as_str());
            }
        }
        let mut body = String::new();
        for (line, tag) in lines.iter().zip(tag_of) {
            match tag {
                Some(tag) => body += &format!("{} {tag}\n", line.trim_end()),
                None => body += &format!("{line}\n"),
            }
        }
        (words.len(), body)
    } else {
        let records: Vec<Value> = if text.trim_start().starts_with('[') {
            serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{}: not valid JSON: {e}", file.display()))?
        } else {
            text.lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
                .map(|(n, l)| {
                    serde_json::from_str(l).map_err(|e| {
                        anyhow::anyhow!("{} line {}: not valid JSON: {e}", file.display(), n + 1)
                    })
                })
                .collect::<Result<_>>()?
        };
        let words: Vec<Vec<String>> = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let list = r
                    .get("tokens")
                    .or_else(|| r.as_object().and_then(|o| o.values().next()));
                list.and_then(|v| v.as_array())
                    .map(|a| {
                        a.iter()
                            .map(|w| w.as_str().unwrap_or("").to_string())
                            .collect()
                    })
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "{} record {}: no list of words (`tokens`)",
                            file.display(),
                            i + 1
                        )
                    })
            })
            .collect::<Result<_>>()?;
        let tags = entities::predict_word_tags(&tagger, &tokenizer, &words)?;
        let tagged: Vec<Value> = records
            .into_iter()
            .zip(tags)
            .map(|(mut r, t)| {
                if let Value::Object(fields) = &mut r {
                    fields.insert("predicted_tags".into(), serde_json::json!(t));
                }
                r
            })
            .collect();
        let body = if ext(out) == "json" {
            serde_json::to_string_pretty(&tagged)? + "\n"
        } else {
            tagged.iter().map(|r| r.to_string() + "\n").collect()
        };
        (words.len(), body)
    };
    bert_finetune::runtime::atomic::write(out, written.1.as_bytes())?;
    println!(
        "{} sentences tagged into {}",
        thousands(written.0),
        out.display()
    );
    Ok(())
}
