//! Extractive question answering from the command line, as a user of run_qa.py would try it:
//! Hugging Face's flat JSON lines to train, SQuAD's official nested JSON to validate, a JSON
//! array to test, all made from CoLA sentences; `train --train-file` telling the task from the
//! file, SQuAD's exact match and F1 printed and in summary.json, a folder transformers would load
//! as a question-answering model, and `predict --question --context` answering.

mod common;

use bert_finetune::data::squad::QaExample;
use common::questions::examples;
use common::*;
use serde_json::{json, Value};

fn flat(e: &QaExample) -> Value {
    json!({"id": e.id, "question": e.question, "context": e.context,
           "answers": {"text": e.answers.iter().map(|a| a.text.clone()).collect::<Vec<_>>(),
                       "answer_start": e.answers.iter().map(|a| a.start).collect::<Vec<_>>()}})
}

fn nested(examples: &[QaExample]) -> Value {
    json!({"version": "v1.1", "data": [{"title": "CoLA", "paragraphs": examples.iter().map(|e| json!({
        "context": e.context,
        "qas": [{"id": e.id, "question": e.question,
                 "answers": e.answers.iter().map(|a| json!({"text": a.text, "answer_start": a.start})).collect::<Vec<_>>()}]
    })).collect::<Vec<_>>()}]})
}

#[test]
fn train_tells_question_answering_from_the_file_and_predict_answers() {
    let dir = tmp();
    let file = |name: &str| dir.path().join(name);
    let train: String = examples(240, 0)
        .iter()
        .map(|e| flat(e).to_string() + "\n")
        .collect();
    std::fs::write(file("train.jsonl"), train).unwrap();
    std::fs::write(file("dev.json"), nested(&examples(40, 4000)).to_string()).unwrap();
    let test: Vec<Value> = examples(40, 5000).iter().map(flat).collect();
    std::fs::write(file("test.json"), Value::Array(test).to_string()).unwrap();
    let out = file("qa_model");
    let stdout = succeeded(
        &cli(&[
            "train",
            "--train-file",
            &path_str(&file("train.jsonl")),
            "--validation-file",
            &path_str(&file("dev.json")),
            "--test-file",
            &path_str(&file("test.json")),
            "--max-len",
            "128",
            "--doc-stride",
            "32",
            "--epochs",
            "2",
            "--batch-size",
            "16",
            "--lr",
            "1e-4",
            "--cpu",
            "--out",
            &path_str(&out),
        ])
        .output()
        .unwrap(),
    );
    println!("{stdout}");
    assert!(stdout
        .contains("Task: extractive question answering, windows of 128 tokens overlapping by 32"));
    assert!(stdout.contains("Validation: exact match"));
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let f1 = summary["test_f1"].as_f64().unwrap();
    assert!(f1 > 40.0, "test F1 {f1}");
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["architectures"], json!(["BertForQuestionAnswering"]));

    let context = "The cat sat on the mat. John left early. Mary sang a song.";
    let stdout = succeeded(
        &cli(&[
            "predict",
            "--model",
            &path_str(&out),
            "--question",
            "John left early.",
            "--context",
            context,
        ])
        .output()
        .unwrap(),
    );
    println!("{stdout}");
    assert!(
        stdout.contains("answer") && stdout.contains("probability"),
        "{stdout}"
    );
    // A whole file: SQuAD's predictions file, the n-best beside it, and the scores.
    let stdout = succeeded(
        &cli(&[
            "predict",
            "--model",
            &path_str(&out),
            "--file",
            &path_str(&file("test.json")),
            "--out",
            &path_str(&file("predictions.json")),
        ])
        .output()
        .unwrap(),
    );
    assert!(stdout.contains("exact match"), "{stdout}");
    let predictions: Value =
        serde_json::from_str(&std::fs::read_to_string(file("predictions.json")).unwrap()).unwrap();
    assert_eq!(predictions.as_object().unwrap().len(), 40);
    let nbest: Value =
        serde_json::from_str(&std::fs::read_to_string(file("predictions_nbest.json")).unwrap())
            .unwrap();
    assert!(nbest["q0"][0]["probability"].as_f64().is_some());
    // Plain texts for a question-answering model: refused with what to give instead.
    let refused = cli(&["predict", "--model", &path_str(&out), "A text."])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("--question and --context"),
        "{stderr}"
    );
}
