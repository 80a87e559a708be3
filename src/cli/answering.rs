//! `bert-finetune train --train-file FILE` when the file holds questions about contexts (SQuAD's
//! official JSON, or Hugging Face's flat records with `question`, `context` and `answers`):
//! extractive question answering as Hugging Face's `run_qa.py` runs it, on the same [`fit`] as
//! every other run. Examples are cut into windows of `--max-len` tokens overlapping by
//! `--doc-stride`; validation after each epoch reports the span accuracy of the windows, and
//! the validation and test files are then answered (utils_qa's post-processing) and scored
//! with SQuAD's exact match and F1. `predict --question … --context …` answers a question.

use std::path::Path;

use anyhow::{bail, Result};
use serde_json::Value;

use bert_finetune::data::squad::{features, hold_out, read_squad, QaExample, QaFeature};
use bert_finetune::data::tokenizer::{BertTokenizer, Padding};
use bert_finetune::data::EncodedSet;
use bert_finetune::eval::answers::{answer_questions, postprocess, AnswerSettings, QaPrediction};
use bert_finetune::eval::{Evaluation, SquadScores, SquadVersion};
use bert_finetune::model::{pretrained, BertForQuestionAnswering};
use bert_finetune::runtime::display::thousands;
use bert_finetune::train::{TrainConfig, Trainer};

use super::fit::{check_own_run, fit, save_run};
use super::own_data::OwnData;
use super::Common;

/// run_qa's `--doc_stride` (128 at its `--max_seq_length` of 384): a quarter of `--max-len`
/// below that, so a short window keeps room for the context.
fn stride(common: &Common, doc_stride: Option<usize>) -> usize {
    doc_stride.unwrap_or(if common.max_len >= 384 {
        128
    } else {
        common.max_len / 4
    })
}

/// Answers for `examples` from the span logits of their windows (`scored`, in `feats`'
/// order), as utils_qa's post-processing gives them.
fn answers_of(
    scored: &Evaluation,
    examples: &[QaExample],
    feats: &[QaFeature],
    settings: AnswerSettings,
) -> Result<Vec<QaPrediction>> {
    let (starts, ends) = scored.span_logits();
    postprocess(examples, feats, &starts, &ends, settings)
}

/// SQuAD's exact match and F1 of `answers` against the examples' gold answers.
fn squad_scores(
    examples: &[QaExample],
    answers: &[QaPrediction],
    version: SquadVersion,
) -> Result<SquadScores> {
    let predicted: Vec<String> = answers.iter().map(|a| a.text.clone()).collect();
    let gold: Vec<Vec<String>> = examples
        .iter()
        .map(|e| e.answers.iter().map(|a| a.text.clone()).collect())
        .collect();
    SquadScores::new(&predicted, &gold, version)
}

/// Answers for `examples` and their SQuAD scores (v2's rules when a question has no answer).
fn answer_and_score<M: bert_finetune::model::TaskModel>(
    trainer: &Trainer<M>,
    examples: &[QaExample],
    feats: &[QaFeature],
    set: &EncodedSet,
    batch_size: usize,
) -> Result<SquadScores> {
    let with_no_answer = examples.iter().any(|e| e.answers.is_empty());
    let settings = AnswerSettings {
        with_no_answer,
        ..AnswerSettings::default()
    };
    let answers = answers_of(
        &trainer.evaluate(set, batch_size)?,
        examples,
        feats,
        settings,
    )?;
    let version = if with_no_answer {
        SquadVersion::V2
    } else {
        SquadVersion::V1
    };
    squad_scores(examples, &answers, version)
}

/// A saved question-answering model's answers to `examples` (see [`answer_questions`]), its
/// windows `max_len` tokens long overlapping by `stride` of that length.
fn answer_with(
    model_dir: &str,
    examples: &[QaExample],
    max_len: usize,
    stride: fn(usize) -> usize,
) -> Result<Vec<QaPrediction>> {
    let device = bert_finetune::runtime::device::choose();
    let tokenizer = pretrained::load_tokenizer(model_dir)?;
    let model = BertForQuestionAnswering::from_pretrained(model_dir, device)?;
    pretrained::check_vocabulary(&tokenizer, &model)?;
    let max_len = max_len.min(model.config.max_tokens() as usize);
    answer_questions(
        &model,
        &tokenizer,
        examples,
        max_len,
        stride(max_len),
        AnswerSettings::default(),
    )
}

pub fn run(
    common: &Common,
    own: &OwnData,
    config: TrainConfig,
    limit: Option<usize>,
    out: &Path,
    resume: bool,
) -> Result<()> {
    check_own_run(&config, own.validation_split, out, resume)?;
    let stride = stride(common, own.doc_stride);
    let train_file = own
        .train_file
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("--train-file is missing"))?;
    let mut train_examples = read_squad(train_file)?;
    let val_examples = match &own.validation_file {
        Some(file) => read_squad(file)?,
        None => {
            let (keep, held) = hold_out(train_examples, own.validation_split, common.seed);
            train_examples = keep;
            held
        }
    };
    if let Some(n) = limit {
        train_examples.truncate(n);
    }
    let test_examples = match &own.test_file {
        Some(file) => Some((file.clone(), read_squad(file)?)),
        None => None,
    };
    if val_examples.is_empty() {
        bail!("the validation set is empty: give --validation-file or more questions");
    }

    let (device, model_name) = common.announce()?;
    say!(
        "Task: extractive question answering, windows of {} tokens overlapping by {stride}",
        common.max_len
    );
    bert_finetune::runtime::device::manual_seed(common.seed);
    let tokenizer = pretrained::load_tokenizer(&model_name)?;
    let windows = |examples: &[QaExample], tokenizer: &BertTokenizer| {
        features(tokenizer, examples, common.max_len, stride)
    };
    let train_features = windows(&train_examples, &tokenizer)?;
    let val_features = windows(&val_examples, &tokenizer)?;
    let test = match &test_examples {
        Some((file, examples)) => Some((file, examples, windows(examples, &tokenizer)?)),
        None => None,
    };
    let padding = Padding::from(common.padding);
    let set = |f: &[QaFeature], padding| {
        EncodedSet::windows(f, tokenizer.pad_id, common.max_len, padding)
    };
    let (train_set, val_set) = (
        set(&train_features, padding),
        set(&val_features, Padding::Longest),
    );
    say!(
        "{} training questions in {} windows, {} validation questions in {} windows",
        thousands(train_examples.len()),
        thousands(train_set.len()),
        thousands(val_examples.len()),
        thousands(val_set.len())
    );
    let model = BertForQuestionAnswering::from_pretrained(&model_name, device)?;
    pretrained::check_vocabulary(&tokenizer, &model)?;
    let (trainer, history) = fit(model, config, train_set, val_set.clone(), out, resume)?;

    let val_scores = answer_and_score(
        &trainer,
        &val_examples,
        &val_features,
        &val_set,
        common.batch_size,
    )?;
    say!(
        "\nValidation: exact match {:.2}, F1 {:.2}",
        val_scores.exact,
        val_scores.f1
    );
    let mut summary = serde_json::json!({
        "model": model_name,
        "task": "question_answering",
        "max_len": common.max_len,
        "doc_stride": stride,
        "train_size": train_examples.len(),
        "train_windows": trainer.train_set().len(),
        "validation_metrics": history.epochs.iter().map(|e| &e.val_metrics).collect::<Vec<_>>(),
        "validation_exact": val_scores.exact,
        "validation_f1": val_scores.f1,
        "best": history.best,
        "training_seconds": history.total_seconds,
    });
    if let Some((file, examples, feats)) = &test {
        say!(
            "\nAnswering {} questions of {}...",
            thousands(examples.len()),
            file.display()
        );
        let test_set = set(feats, Padding::Longest);
        let scores = answer_and_score(&trainer, examples, feats, &test_set, common.batch_size)?;
        say!("{scores}");
        summary["test_exact"] = scores.exact.into();
        summary["test_f1"] = scores.f1.into();
    }
    save_run(&trainer, &tokenizer, &history, &summary, out)?;
    say!("\n{history}\n\nSaved to {}", out.display());
    Ok(())
}

/// `predict --question Q --context C` with a question-answering model: the best answers.
pub fn predict(model_dir: &str, question: &str, context: &str, max_len: usize) -> Result<()> {
    // The question names the answer table (a file's examples are named by their ids).
    let example = QaExample {
        id: question.to_string(),
        question: question.to_string(),
        context: context.to_string(),
        answers: Vec::new(),
    };
    for a in answer_with(model_dir, &[example], max_len, |len| len / 4)? {
        println!("{a}");
    }
    Ok(())
}

/// `predict --file questions.json --out predictions.json` with a question-answering model:
/// SQuAD's predictions file (`{id: answer}`), and beside it `<out>_nbest.json` with each
/// question's candidates, probabilities and logits (utils_qa's two files). When the file holds
/// gold answers, SQuAD's exact match and F1 are printed too.
pub fn predict_file(model_dir: &str, file: &Path, out: &Path) -> Result<()> {
    let examples = read_squad(file)?;
    let answers = answer_with(model_dir, &examples, 384, |len| len / 3)?;
    let predictions: serde_json::Map<String, Value> = answers
        .iter()
        .map(|a| (a.id.clone(), Value::String(a.text.clone())))
        .collect();
    let nbest: serde_json::Map<String, Value> = answers
        .iter()
        .map(|a| {
            let candidates: Vec<Value> = a
                .candidates
                .iter()
                .map(|c| {
                    serde_json::json!({"text": c.text, "probability": c.probability,
                                       "start_logit": c.start_logit, "end_logit": c.end_logit})
                })
                .collect();
            (a.id.clone(), Value::Array(candidates))
        })
        .collect();
    let stem = out
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("predictions");
    let nbest_file = out.with_file_name(format!("{stem}_nbest.json"));
    bert_finetune::runtime::atomic::write(
        out,
        serde_json::to_string_pretty(&predictions)?.as_bytes(),
    )?;
    bert_finetune::runtime::atomic::write(
        &nbest_file,
        serde_json::to_string_pretty(&nbest)?.as_bytes(),
    )?;
    println!(
        "{} answers in {} (candidates in {})",
        thousands(answers.len()),
        out.display(),
        nbest_file.display()
    );
    if examples.iter().any(|e| !e.answers.is_empty()) {
        println!("{}", squad_scores(&examples, &answers, SquadVersion::V2)?);
    }
    Ok(())
}
