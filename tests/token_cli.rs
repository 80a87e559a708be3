//! Token classification from the command line, as a user of run_ner.py would try it: a
//! CoNLL training file and JSON-lines / CoNLL validation and test files made from CoLA
//! sentences, `train --train-file` telling the task from the file, the test's entity scores
//! printed and in summary.json, a folder transformers would load as a token classifier, and
//! `predict` printing the entities of new texts. A test file with a tag training never saw
//! stops the run before training, naming it, with nothing written.

mod common;

use common::tags::{tagged, TAGS};
use common::*;

fn conll(words: &[Vec<String>], tags: &[Vec<i64>]) -> String {
    let mut out = String::from("-DOCSTART- O\n\n");
    for (w, t) in words.iter().zip(tags) {
        for (word, tag) in w.iter().zip(t) {
            out += &format!("{word} {}\n", TAGS[*tag as usize]);
        }
        out += "\n";
    }
    out
}

fn jsonl(words: &[Vec<String>], tags: &[Vec<i64>]) -> String {
    words
        .iter()
        .zip(tags)
        .map(|(w, t)| {
            let names: Vec<&str> = t.iter().map(|&i| TAGS[i as usize]).collect();
            serde_json::json!({"id": "x", "tokens": w, "ner_tags": names}).to_string() + "\n"
        })
        .collect()
}

#[test]
fn train_tells_token_classification_from_the_file_and_predict_prints_entities() {
    let dir = tmp();
    let (w, t) = tagged(200, 0);
    std::fs::write(dir.path().join("train.conll"), conll(&w, &t)).unwrap();
    let (w, t) = tagged(40, 1);
    std::fs::write(dir.path().join("dev.jsonl"), jsonl(&w, &t)).unwrap();
    let (w, t) = tagged(40, 2);
    std::fs::write(dir.path().join("test.conll"), conll(&w, &t)).unwrap();
    let out = dir.path().join("ner_model");
    let file = |name: &str| path_str(&dir.path().join(name));
    let stdout = succeeded(
        &cli(&[
            "train",
            "--train-file",
            &file("train.conll"),
            "--validation-file",
            &file("dev.jsonl"),
            "--test-file",
            &file("test.conll"),
            "--epochs",
            "2",
            "--batch-size",
            "16",
            "--max-len",
            "48",
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
    assert!(
        stdout.contains("Task: token classification, 4 tags: B-DET, B-PER, I-DET, O"),
        "{stdout}"
    );
    assert!(stdout.contains("Entity F1:") && stdout.contains("overall (micro)"));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let f1 = summary["test_f1"].as_f64().unwrap();
    assert!(f1 > 0.5, "test entity F1 {f1}");
    assert!(summary["test_entities"]["PER"]["support"].as_u64().unwrap() > 0);
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        config["architectures"],
        serde_json::json!(["BertForTokenClassification"])
    );
    assert_eq!(config["id2label"]["1"], "B-PER");

    let stdout = succeeded(
        &cli(&[
            "predict",
            "--model",
            &path_str(&out),
            "John saw the cat in the garden.",
        ])
        .output()
        .unwrap(),
    );
    println!("{stdout}");
    assert!(stdout.contains("John saw the cat in the garden.") && stdout.contains("entity"));
    assert!(
        stdout.contains("DET"),
        "the trained tagger finds a determiner phrase: {stdout}"
    );
    // Whole files: JSON lines keep their fields and gain the tags; CoNLL gains a column.
    for (input, output) in [
        ("dev.jsonl", "tagged.jsonl"),
        ("test.conll", "tagged.conll"),
    ] {
        succeeded(
            &cli(&[
                "predict",
                "--model",
                &path_str(&out),
                "--file",
                &file(input),
                "--out",
                &file(output),
            ])
            .output()
            .unwrap(),
        );
    }
    let tagged = std::fs::read_to_string(dir.path().join("tagged.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = tagged
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 40);
    for r in &records {
        assert_eq!(
            r["predicted_tags"].as_array().unwrap().len(),
            r["tokens"].as_array().unwrap().len()
        );
        assert!(r["ner_tags"].is_array(), "the input's fields are kept");
    }
    let conll_out = std::fs::read_to_string(dir.path().join("tagged.conll")).unwrap();
    let conll_in = std::fs::read_to_string(dir.path().join("test.conll")).unwrap();
    assert_eq!(conll_out.lines().count(), conll_in.lines().count());
    for (a, b) in conll_in.lines().zip(conll_out.lines()) {
        if a.trim().is_empty() || a.starts_with("-DOCSTART-") {
            assert_eq!(a, b);
        } else {
            assert!(
                b.starts_with(a) && TAGS.contains(&b.rsplit(' ').next().unwrap()),
                "{b}"
            );
        }
    }
}

#[test]
fn a_test_tag_training_never_saw_stops_the_run_before_training() {
    let dir = tmp();
    let (w, t) = tagged(30, 0);
    std::fs::write(dir.path().join("train.conll"), conll(&w, &t)).unwrap();
    std::fs::write(
        dir.path().join("test.conll"),
        "John B-PER\nran O\n\nLyon B-CITY\nis O\n",
    )
    .unwrap();
    let out = dir.path().join("model");
    let result = cli(&[
        "train",
        "--train-file",
        &path_str(&dir.path().join("train.conll")),
        "--test-file",
        &path_str(&dir.path().join("test.conll")),
        "--cpu",
        "--out",
        &path_str(&out),
    ])
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("test.conll sentence 2") && stderr.contains("\"B-CITY\""),
        "{stderr}"
    );
    assert!(
        !out.join("model.safetensors").exists(),
        "nothing trained, nothing written"
    );
}

#[test]
fn format_conll_reads_a_conll_file_whatever_its_extension() {
    let dir = tmp();
    let (w, t) = tagged(30, 0);
    std::fs::write(dir.path().join("train.data"), conll(&w, &t)).unwrap();
    std::fs::write(
        dir.path().join("test.data"),
        "John B-PER\nran O\n\nLyon B-CITY\nis O\n",
    )
    .unwrap();
    let run = |format: &[&str]| {
        let mut args = vec![
            "train".to_string(),
            "--train-file".into(),
            path_str(&dir.path().join("train.data")),
            "--test-file".into(),
            path_str(&dir.path().join("test.data")),
            "--cpu".into(),
            "--out".into(),
            path_str(&dir.path().join("model")),
        ];
        args.extend(format.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let result = cli(&args).output().unwrap();
        (
            result.status.code(),
            String::from_utf8_lossy(&result.stderr).to_string(),
        )
    };
    // Without --format the extension says nothing, and the error says what to name.
    let (code, stderr) = run(&[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("train.data") && stderr.contains("conll"),
        "{stderr}"
    );
    // With it, both files are read as CoNLL: the test file's unseen tag is found by name.
    let (code, stderr) = run(&["--format", "conll"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("test.data sentence 2") && stderr.contains("\"B-CITY\""),
        "{stderr}"
    );
    assert!(!dir.path().join("model").join("model.safetensors").exists());
}
