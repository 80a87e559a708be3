//! Extractive question answering's data and post-processing against transformers: windows,
//! token types, offsets and answer positions against its fast tokenizer with
//! `return_overflowing_tokens` as run_qa.py prepares features, for contexts many windows long
//! made of real sentences; answers from logits against a Python port of utils_qa.py's
//! `postprocess_qa_predictions`; SQuAD files, nested and flat, with every bad input named.

mod common;

use bert_finetune::data::cola::{Cola, Split};
use bert_finetune::data::squad::{features, read_squad, Answer, QaExample};
use bert_finetune::eval::answers::{postprocess, AnswerSettings};
use bert_finetune::model::pretrained::load_tokenizer;
use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// Contexts of 12–30 CoLA sentences, the question another sentence, the answer a sentence of
/// the context or a few words of one; one question without an answer; one context with
/// accents and an emoji, so characters and bytes differ.
fn examples() -> Vec<QaExample> {
    let cola =
        Cola::load_split(bert_finetune::runtime::settings::cola_dir(), Split::Train).unwrap();
    let sentences = cola.sentences();
    let mut rng = StdRng::seed_from_u64(11);
    let mut out = Vec::new();
    for i in 0..12 {
        let first = rng.random_range(0..sentences.len() - 40);
        let n = rng.random_range(12..30);
        let parts = &sentences[first..first + n];
        let context = parts.join(" ");
        let k = rng.random_range(0..n);
        let before: usize = parts[..k].iter().map(|s| s.chars().count() + 1).sum();
        let mut text = parts[k].clone();
        let mut start = before;
        if i % 3 == 1 {
            // A few words from inside the sentence.
            let words: Vec<&str> = parts[k].split(' ').collect();
            if words.len() > 3 {
                let skip: usize = words[..1].iter().map(|w| w.chars().count() + 1).sum();
                text = words[1..3].join(" ");
                start += skip;
            }
        }
        let answers = if i == 5 {
            Vec::new()
        } else {
            vec![Answer { text, start }]
        };
        let question = format!(
            "{}{}",
            if i % 4 == 0 { "   " } else { "" },
            sentences[first + n + 3]
        );
        out.push(QaExample {
            id: format!("q{i}"),
            question,
            context,
            answers,
        });
    }
    let context = "Le café de Zoë se trouve à Orléans 🚀 depuis 1998, près de la gare. ".repeat(6);
    let start = context.chars().count() - 30;
    out.push(QaExample {
        id: "accents".into(),
        question: "Où se trouve le café?".into(),
        answers: vec![Answer {
            text: context.chars().skip(start).take(12).collect(),
            start,
        }],
        context,
    });
    out
}

fn example_json(e: &QaExample) -> Value {
    json!({"id": e.id, "question": e.question, "context": e.context,
           "answers": e.answers.iter().map(|a| json!({"text": a.text, "start": a.start})).collect::<Vec<_>>()})
}

#[test]
fn windows_offsets_and_answer_positions_equal_run_qa_features() {
    windows_equal_run_qa(&minilm());
}

/// The same for RoBERTa's and XLM-R's kinds of tokenizer (`<s> question </s></s> context </s>`,
/// byte-level and Metaspace offsets), trained on CoLA by `tests/python/families.py`.
#[test]
fn roberta_and_xlm_r_windows_equal_run_qa_features() {
    for family in FAMILIES {
        windows_equal_run_qa(family_tokenizer(family).path());
    }
}

fn windows_equal_run_qa(tokenizer_dir: &std::path::Path) {
    let tokenizer = load_tokenizer(tokenizer_dir).unwrap();
    let examples = examples();
    for (max_len, stride) in [(64, 16), (128, 48)] {
        let ours = features(&tokenizer, &examples, max_len, stride).unwrap();
        let dir = tmp();
        let file = dir.path().join("case.json");
        std::fs::write(
            &file,
            json!({"tokenizer": path_str(tokenizer_dir), "max_len": max_len, "stride": stride,
                   "examples": examples.iter().map(example_json).collect::<Vec<_>>()})
            .to_string(),
        )
        .unwrap();
        let theirs: Vec<Value> =
            serde_json::from_str(&python("qa.py", &["windows".as_ref(), file.as_os_str()]))
                .unwrap();
        assert_eq!(
            ours.len(),
            theirs.len(),
            "number of windows at {max_len}/{stride}"
        );
        assert!(
            ours.len() > 2 * examples.len(),
            "contexts span several windows"
        );
        let mut answered = 0;
        for (f, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            let offsets: Vec<Value> = a
                .offsets
                .iter()
                .map(|o| json!(o.map(|(x, y)| [x, y])))
                .collect();
            assert_eq!(json!(a.example), b["example"], "feature {f}");
            assert_eq!(json!(a.ids), b["ids"], "feature {f}");
            assert_eq!(json!(a.type_ids), b["type_ids"], "feature {f}");
            assert_eq!(Value::Array(offsets), b["offsets"], "feature {f}");
            assert_eq!(
                (json!(a.start), json!(a.end)),
                (b["start"].clone(), b["end"].clone()),
                "feature {f}"
            );
            answered += usize::from(a.start > 0);
            assert!(a.ids.len() <= max_len);
        }
        assert!(
            answered >= examples.len() - 1,
            "most answers land in some window"
        );
    }
}

#[test]
fn answers_from_logits_equal_utils_qa_postprocessing() {
    let tokenizer = load_tokenizer(minilm()).unwrap();
    let examples = examples();
    let feats = features(&tokenizer, &examples, 64, 16).unwrap();
    let mut rng = StdRng::seed_from_u64(3);
    // Logits with a bump where each window's answer is, so real answers win now and then,
    // and at [CLS] for the question without an answer, so the null answer wins there.
    let mut draw = |f: &bert_finetune::data::squad::QaFeature, at: i64| -> Vec<f32> {
        let unanswerable = examples[f.example].answers.is_empty();
        (0..f.ids.len())
            .map(|i| {
                let bump = (i as i64 == at && at > 0) || (i == 0 && unanswerable);
                rng.random_range(-3.0..3.0f32) + if bump { 8.0 } else { 0.0 }
            })
            .collect()
    };
    let starts: Vec<Vec<f32>> = feats.iter().map(|f| draw(f, f.start)).collect();
    let ends: Vec<Vec<f32>> = feats.iter().map(|f| draw(f, f.end)).collect();
    for settings in [
        AnswerSettings::default(),
        AnswerSettings {
            n_best: 5,
            max_answer_len: 8,
            with_no_answer: true,
            null_threshold: 0.0,
        },
    ] {
        let ours = postprocess(&examples, &feats, &starts, &ends, settings).unwrap();
        let dir = tmp();
        let file = dir.path().join("case.json");
        let features_json: Vec<Value> = feats
            .iter()
            .map(|f| json!({"example": f.example, "offsets": f.offsets.iter().map(|o| o.map(|(a, b)| [a, b])).collect::<Vec<_>>()}))
            .collect();
        std::fs::write(
            &file,
            json!({"examples": examples.iter().map(example_json).collect::<Vec<_>>(),
                   "features": features_json, "start_logits": starts, "end_logits": ends,
                   "n_best": settings.n_best, "max_answer_len": settings.max_answer_len,
                   "with_no_answer": settings.with_no_answer, "null_threshold": settings.null_threshold})
            .to_string(),
        )
        .unwrap();
        let theirs: Vec<Value> =
            serde_json::from_str(&python("qa.py", &["answers".as_ref(), file.as_os_str()]))
                .unwrap();
        let mut empty = 0;
        for (p, want) in ours.iter().zip(&theirs) {
            assert_eq!(p.text, want["text"].as_str().unwrap(), "{}", p.id);
            empty += usize::from(p.text.is_empty());
            let cands = want["candidates"].as_array().unwrap();
            assert_eq!(p.candidates.len(), cands.len(), "{}", p.id);
            for (c, w) in p.candidates.iter().zip(cands) {
                assert_eq!(c.text, w["text"].as_str().unwrap(), "{}", p.id);
                assert!((c.probability - w["probability"].as_f64().unwrap()).abs() < 1e-9);
                assert!((c.start_logit - w["start_logit"].as_f64().unwrap()).abs() < 1e-6);
            }
            if let Some(d) = p.null_score_diff {
                assert!((d - want["null_score_diff"].as_f64().unwrap()).abs() < 1e-6);
            }
        }
        if settings.with_no_answer {
            assert!(
                empty > 0 && empty < ours.len(),
                "some questions get no answer: {empty}"
            );
        }
    }
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let file = dir.join(name);
    std::fs::write(&file, text).unwrap();
    file
}

#[test]
fn squad_files_nested_and_flat_and_every_bad_input_named() {
    let dir = tmp();
    let nested = write(
        dir.path(),
        "dev-v2.0.json",
        &json!({"version": "v2.0", "data": [{"title": "T", "paragraphs": [{"context": "Zoë lives in Orléans.",
            "qas": [{"id": "a1", "question": "Where?", "answers": [{"text": "Orléans", "answer_start": 13}]},
                    {"id": "a2", "question": "When?", "answers": [], "is_impossible": true}]}]}]})
        .to_string(),
    );
    let read = read_squad(&nested).unwrap();
    assert_eq!(read.len(), 2);
    assert_eq!(
        read[0].answers[0],
        Answer {
            text: "Orléans".into(),
            start: 13
        }
    );
    assert!(read[1].answers.is_empty());
    let flat = write(
        dir.path(),
        "train.jsonl",
        "{\"id\": \"b1\", \"context\": \"The cat sat.\", \"question\": \"Who sat?\", \"answers\": {\"text\": [\"The cat\"], \"answer_start\": [0]}}\n",
    );
    assert_eq!(read_squad(&flat).unwrap()[0].answers[0].text, "The cat");

    let err = |text: &str| {
        format!(
            "{:#}",
            read_squad(&write(dir.path(), "bad.jsonl", text)).unwrap_err()
        )
    };
    let e = err("{\"id\": \"c7\", \"context\": \"The cat sat.\", \"question\": \"Who?\", \"answers\": {\"text\": [\"cat\"], \"answer_start\": [0]}}");
    assert!(
        e.contains("question c7") && e.contains("answer_start 0 points at \"The\""),
        "{e}"
    );
    let e = err("{\"id\": \"c8\", \"context\": \"  \", \"question\": \"Who?\", \"answers\": {\"text\": [], \"answer_start\": []}}");
    assert!(e.contains("question c8: the context is empty"), "{e}");
    let e = err("{\"id\": \"c9\", \"context\": \"x\", \"question\": \"Who?\", \"answers\": {\"text\": [\"x\"], \"answer_start\": [0, 1]}}");
    assert!(e.contains("1 answer texts but 2 answer_start"), "{e}");
    let e = err("{\"id\": \"d1\", \"question\": \"Who?\", \"answers\": {\"text\": [], \"answer_start\": []}}");
    assert!(
        e.contains("line 1 (question d1): no field `context`"),
        "{e}"
    );

    // A question that leaves no room for its context.
    let tokenizer = load_tokenizer(minilm()).unwrap();
    let long = QaExample {
        id: "long".into(),
        question: "why ".repeat(80),
        context: "Because.".into(),
        answers: vec![],
    };
    let e = format!("{:#}", features(&tokenizer, &[long], 64, 16).unwrap_err());
    assert!(
        e.contains("question long") && e.contains("--max-len 64"),
        "{e}"
    );
}
