//! A user's own files: every format through polars' readers, the task inferred from the
//! columns and labels, and each bad file a clear error naming file, row and column.

mod common;

use std::path::{Path, PathBuf};

use bert_finetune::data::cola::{Cola, Split};
use bert_finetune::data::table::{read_table, Format};
use bert_finetune::data::task::{Task, TaskSpec};
use bert_finetune::data::{Labels, ProblemType};
use bert_finetune::polars::prelude::*;
use bert_finetune::runtime::settings;
use common::*;

/// Twelve real CoLA sentences, some with commas and quotes, for files of every kind.
fn sentences() -> Vec<String> {
    let cola = Cola::load_split(settings::cola_dir(), Split::Train).unwrap();
    let mut all = cola.sentences();
    all.truncate(12);
    all
}

fn csv_field(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The same table (text, a string label, a float score) in each format; returns the files.
fn write_all_formats(dir: &Path, texts: &[String]) -> Vec<(Format, PathBuf)> {
    let names = ["good", "bad", "odd"];
    let label = |i: usize| names[i % 3];
    let score = |i: usize| i as f64 * 0.25;
    // A quoted field holding the separator, a quote and a newline.
    let mut texts = texts.to_vec();
    texts[1] = format!("{}, \"quoted\"\nand a second line", texts[1]);
    let mut csv = String::from("text,label,score\n");
    let mut tsv = String::from("text\tlabel\tscore\n");
    let mut jsonl = String::new();
    for (i, t) in texts.iter().enumerate() {
        csv += &format!("{},{},{}\n", csv_field(t), label(i), score(i));
        tsv += &format!("{}\t{}\t{}\n", csv_field(t), label(i), score(i));
        jsonl += &format!(
            "{}\n",
            serde_json::json!({"text": t, "label": label(i), "score": score(i)})
        );
    }
    let files = [
        (Format::Csv, dir.join("data.csv"), csv),
        (Format::Tsv, dir.join("data.tsv"), tsv),
        (Format::JsonLines, dir.join("data.jsonl"), jsonl),
    ];
    let mut out = Vec::new();
    for (format, path, text) in files {
        std::fs::write(&path, text).unwrap();
        out.push((format, path));
    }
    let mut frame = df!(
        "text" => texts.clone(),
        "label" => (0..texts.len()).map(label).collect::<Vec<_>>(),
        "score" => (0..texts.len()).map(score).collect::<Vec<_>>(),
    )
    .unwrap();
    let parquet = dir.join("data.parquet");
    ParquetWriter::new(std::fs::File::create(&parquet).unwrap())
        .finish(&mut frame)
        .unwrap();
    out.push((Format::Parquet, parquet));
    out
}

#[test]
fn every_format_reads_the_same_examples() {
    let dir = tmp();
    let texts = sentences();
    let files = write_all_formats(dir.path(), &texts);
    let mut seen = Vec::new();
    for (format, path) in &files {
        assert_eq!(Format::of_path(path).unwrap(), *format);
        let frame = read_table(path, None).unwrap();
        assert_eq!(frame.height(), 12, "{format}");
        let spec = TaskSpec {
            text_columns: vec!["text".into()],
            ..TaskSpec::default()
        };
        let task = Task::infer(&frame, &spec, path).unwrap();
        assert_eq!(task.problem_type, ProblemType::SingleLabelClassification);
        assert_eq!(
            task.label_names,
            ["bad", "good", "odd"],
            "sorted, as run_glue sorts"
        );
        let examples = task.examples(&frame, path).unwrap();
        assert!(
            examples.first[1].contains("\"quoted\"\nand a second line"),
            "{format}"
        );
        assert_eq!(examples.first[0], texts[0]);
        seen.push((examples.first, examples.labels));
    }
    for s in &seen[1..] {
        assert_eq!(s, &seen[0], "every format gives the same texts and labels");
    }
    let Labels::Classes(ids) = &seen[0].1 else {
        panic!("class ids")
    };
    assert_eq!(&ids[..3], &[1, 0, 2], "good, bad, odd");

    // The float column means regression, for every format alike.
    for (format, path) in &files {
        let frame = read_table(path, None).unwrap();
        let spec = TaskSpec {
            text_columns: vec!["text".into()],
            label_column: "score".into(),
            problem_type: None,
            label_columns: Vec::new(),
        };
        let task = Task::infer(&frame, &spec, path).unwrap();
        assert_eq!(task.problem_type, ProblemType::Regression, "{format}");
        assert_eq!(task.num_labels(), 1);
        let Labels::Values(v) = task.examples(&frame, path).unwrap().labels else {
            panic!("values")
        };
        assert_eq!(v[3], 0.75);
    }
}

#[test]
fn pairs_and_multi_label_are_inferred_as_run_glue_does() {
    let dir = tmp();
    let texts = sentences();
    let mut jsonl = String::new();
    for (i, pair) in texts.chunks(2).enumerate() {
        let tags: Vec<&str> = ["syntax", "semantics", "morphology"]
            .into_iter()
            .enumerate()
            .filter(|(k, _)| (i + k) % 2 == 0)
            .map(|(_, t)| t)
            .collect();
        jsonl += &format!(
            "{}\n",
            serde_json::json!({"idx": i, "sentence1": pair[0], "sentence2": pair[1],
                               "label": i % 2, "tags": tags})
        );
    }
    let path = dir.path().join("pairs.jsonl");
    std::fs::write(&path, jsonl).unwrap();
    let frame = read_table(&path, None).unwrap();
    let task = Task::infer(&frame, &TaskSpec::default(), &path).unwrap();
    assert_eq!(task.text_columns, ["sentence1", "sentence2"]);
    assert!(task.is_pair());
    assert_eq!(task.label_names, ["0", "1"]);
    let examples = task.examples(&frame, &path).unwrap();
    assert_eq!(examples.second.as_ref().unwrap()[0], texts[1]);

    let spec = TaskSpec {
        label_column: "tags".into(),
        ..TaskSpec::default()
    };
    let task = Task::infer(&frame, &spec, &path).unwrap();
    assert_eq!(task.problem_type, ProblemType::MultiLabelClassification);
    assert_eq!(task.label_names, ["morphology", "semantics", "syntax"]);
    let Labels::MultiHot(hot) = task.examples(&frame, &path).unwrap().labels else {
        panic!("multi-hot")
    };
    assert_eq!(hot[0], [1.0, 0.0, 1.0], "row 0: syntax and morphology");
    assert_eq!(hot[1], [0.0, 1.0, 0.0], "row 1: semantics");
}

/// The error of reading `text` (as a `.csv`) and inferring its task with `spec`.
fn refused(name: &str, text: &str, spec: &TaskSpec) -> String {
    let dir = tmp();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    let result = read_table(&path, None).and_then(|frame| {
        let task = Task::infer(&frame, spec, &path)?;
        task.examples(&frame, &path)
    });
    let err = format!("{:#}", result.expect_err("a bad file is refused"));
    assert!(err.contains(name), "the error names the file: {err}");
    err
}

#[test]
fn bad_files_are_refused_naming_file_row_and_column() {
    let spec = TaskSpec::default();
    let err = refused("missing.csv", "sentence,class\nA cat.,1\nCats.,0\n", &spec);
    assert!(
        err.contains("no column \"label\"") && err.contains("sentence, class"),
        "{err}"
    );

    let err = refused(
        "null_text.csv",
        "text,label\nA cat.,1\n,0\nDogs.,1\n",
        &spec,
    );
    assert!(
        err.contains("row 2") && err.contains("\"text\"") && err.contains("null"),
        "{err}"
    );

    let err = refused("null_label.csv", "text,label\nA cat.,1\nDogs.,\n", &spec);
    assert!(err.contains("row 2") && err.contains("\"label\""), "{err}");

    let err = refused(
        "ragged.csv",
        "text,label\nA cat.,1\nDogs.,0,extra,fields\n",
        &spec,
    );
    assert!(err.contains("not readable as csv"), "{err}");

    let err = refused("misquoted.csv", "text,label\n\"A cat.,1\nDogs.,0\n", &spec);
    assert!(err.contains("misquoted.csv"), "{err}");

    let err = refused("empty.csv", "", &spec);
    assert!(err.contains("is empty"), "{err}");
    let err = refused("header_only.csv", "text,label\n", &spec);
    assert!(err.contains("no rows"), "{err}");

    let strings_as_regression = TaskSpec {
        problem_type: Some(ProblemType::Regression),
        ..TaskSpec::default()
    };
    let err = refused(
        "typed.csv",
        "text,label\nA cat.,good\nDogs.,bad\n",
        &strings_as_regression,
    );
    assert!(
        err.contains("regression") && err.contains("\"label\""),
        "{err}"
    );

    let err = refused("one_class.csv", "text,label\nA cat.,1\nDogs.,1\n", &spec);
    assert!(err.contains("at least two"), "{err}");

    // Label columns of a multi-label task hold 0 or 1, in every row.
    let columns = TaskSpec {
        label_columns: vec!["toxic".into(), "insult".into()],
        ..TaskSpec::default()
    };
    let err = refused(
        "flags.csv",
        "text,toxic,insult\nA cat.,0,1\nDogs.,2,0\n",
        &columns,
    );
    assert!(
        err.contains("row 2") && err.contains("\"toxic\"") && err.contains("0 or 1"),
        "{err}"
    );
    let err = refused("no_flag.csv", "text,toxic\nA cat.,0\n", &columns);
    assert!(
        err.contains("no column \"insult\"") && err.contains("text, toxic"),
        "{err}"
    );
    // A list label with a null inside names the row.
    let dir = tmp();
    let list = dir.path().join("lists.jsonl");
    std::fs::write(
        &list,
        "{\"text\": \"A cat.\", \"label\": [\"a\"]}\n{\"text\": \"Dogs.\", \"label\": [\"b\", null]}\n",
    )
    .unwrap();
    let frame = read_table(&list, None).unwrap();
    let err = format!("{:#}", Task::infer(&frame, &spec, &list).unwrap_err());
    assert!(
        err.contains("lists.jsonl") && err.contains("row 2"),
        "{err}"
    );

    // A validation file with a label the training file never had.
    let dir = tmp();
    let train = dir.path().join("train.csv");
    let val = dir.path().join("validation.csv");
    std::fs::write(&train, "text,label\nA cat.,good\nDogs.,bad\n").unwrap();
    std::fs::write(&val, "text,label\nA bird.,good\nFish.,ugly\n").unwrap();
    let task = Task::infer(&read_table(&train, None).unwrap(), &spec, &train).unwrap();
    let err = format!(
        "{:#}",
        task.examples(&read_table(&val, None).unwrap(), &val)
            .expect_err("unseen label")
    );
    assert!(
        err.contains("validation.csv")
            && err.contains("row 2")
            && err.contains("\"ugly\"")
            && err.contains("bad, good"),
        "{err}"
    );

    let err = format!(
        "{:#}",
        read_table(dir.path().join("data.xlsx"), None).unwrap_err()
    );
    assert!(
        err.contains("data.xlsx") && err.contains("csv, tsv, jsonl, parquet"),
        "{err}"
    );
}

/// Real CoLA sentences as pairs: (i, i+1), some long enough to be cut at `max_len`.
fn pairs_of_sentences(n: usize) -> (Vec<String>, Vec<String>, Vec<i64>) {
    let cola = Cola::load_split(settings::cola_dir(), Split::Train).unwrap();
    let all = cola.sentences();
    let labels = cola.labels();
    // Long sentences first, so truncation is exercised on both sides and unevenly.
    let mut order: Vec<usize> = (0..all.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(all[i].len()));
    let pick: Vec<usize> = order[..n / 2]
        .iter()
        .chain(&order[2000..2000 + n / 2])
        .copied()
        .collect();
    let first = pick.iter().map(|&i| all[i].clone()).collect();
    let second = pick
        .iter()
        .map(|&i| all[(i + 1) % all.len()].clone())
        .collect();
    let labels = pick.iter().map(|&i| labels[i]).collect();
    (first, second, labels)
}

#[test]
fn pairs_encode_as_transformers_and_a_pair_model_trains_and_matches_it() {
    use bert_finetune::data::tokenizer::BertTokenizer;
    use bert_finetune::data::tokenizer::Padding;
    use bert_finetune::data::{EncodedSet, Sampler};
    use bert_finetune::model::BertForSequenceClassification;
    use bert_finetune::train::{TrainConfig, Trainer};

    let tokenizer = BertTokenizer::from_dir(minilm()).unwrap();
    let (first, second, labels) = pairs_of_sentences(40);
    let dir = tmp();
    for max_len in [16usize, 64] {
        let spec = dir.path().join(format!("pairs-{max_len}.json"));
        std::fs::write(
            &spec,
            serde_json::json!({"first": first, "second": second, "max_len": max_len}).to_string(),
        )
        .unwrap();
        let theirs: serde_json::Value = serde_json::from_str(&python(
            "reference.py",
            &[
                "pairs",
                "--tokenizer",
                &path_str(&minilm()),
                "--pairs",
                &path_str(&spec),
            ],
        ))
        .unwrap();
        let ours = tokenizer.encode_pairs(&first, &second, max_len).unwrap();
        for (i, (ids, types)) in ours.iter().enumerate() {
            assert_eq!(
                serde_json::json!(ids),
                theirs["ids"][i],
                "pair {i} ids at {max_len}"
            );
            assert_eq!(
                serde_json::json!(types),
                theirs["type_ids"][i],
                "pair {i} types"
            );
            assert!(ids.len() <= max_len);
        }
        if max_len == 16 {
            assert!(
                ours.iter().all(|(ids, _)| ids.len() == 16),
                "the long pairs are cut"
            );
        }
    }

    // A pair classifier: a few steps, saved, and transformers reads the same logits.
    let set =
        EncodedSet::pairs(&tokenizer, &first, &second, &labels, 64, Padding::Longest).unwrap();
    assert!(set.type_ids.as_ref().unwrap()[0].contains(&1));
    tch::manual_seed(3);
    let model = BertForSequenceClassification::from_pretrained(
        minilm().to_str().unwrap(),
        2,
        tch::Device::Cpu,
    )
    .unwrap();
    let config = TrainConfig {
        epochs: 1,
        batch_size: 8,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(model, config, set.take(32), set.subset(&[32, 33])).unwrap();
    let history = trainer.fit().unwrap();
    assert_eq!(history.batch_losses.len(), 4);
    let out = dir.path().join("pair_model");
    trainer
        .model()
        .save_pretrained(&out, Some(&tokenizer))
        .unwrap();
    let batch = set
        .batches(40, Sampler::Sequential, tch::Device::Cpu)
        .remove(0);
    let ours = tch::no_grad(|| trainer.model().logits(&batch.inputs, false));
    let spec = dir.path().join("pairs-64.json");
    let theirs: serde_json::Value = serde_json::from_str(&python(
        "reference.py",
        &[
            "pairs",
            "--model",
            &path_str(&out),
            "--pairs",
            &path_str(&spec),
        ],
    ))
    .unwrap();
    let theirs: Vec<Vec<f64>> = serde_json::from_value(theirs["logits"].clone()).unwrap();
    let ours: Vec<Vec<f64>> = Vec::<Vec<f64>>::try_from(ours.to_kind(tch::Kind::Double)).unwrap();
    let worst = ours
        .iter()
        .flatten()
        .zip(theirs.iter().flatten())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(
        worst <= 1e-4,
        "transformers sees the pair logits {worst} away"
    );
    // Without the type ids the logits change: the second text's segment is read.
    let mut single = batch.inputs.to_device(tch::Device::Cpu);
    single.token_type_ids = single.token_type_ids.zeros_like();
    let untyped = tch::no_grad(|| trainer.model().logits(&single, false));
    let ours = tch::no_grad(|| trainer.model().logits(&batch.inputs, false));
    assert!(
        !ours.allclose(&untyped, 1e-6, 1e-6, false),
        "token type ids reach the model"
    );
}

/// `bert-finetune train` on files of its own, as a user runs it.
fn train_cli(args: &[&str]) -> std::process::Output {
    cli(&["train", "--model", &path_str(&minilm())])
        .args(["--epochs", "1", "--batch-size", "8"])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_cli_fine_tunes_a_three_class_csv_and_a_pair_file() {
    let dir = tmp();
    let cola = Cola::load_split(settings::cola_dir(), Split::Train).unwrap();
    let all = cola.sentences();
    // Three classes by length, named as a user would name them: learnable, real text.
    let class = |s: &str| match s.split_whitespace().count() {
        0..=5 => "short",
        6..=9 => "medium",
        _ => "long",
    };
    let table = |rows: &[String]| {
        let mut csv = String::from("sentence,length\n");
        for s in rows {
            csv += &format!("{},{}\n", csv_field(s), class(s));
        }
        csv
    };
    let (train, test) = (dir.path().join("train.csv"), dir.path().join("test.csv"));
    std::fs::write(&train, table(&all[..64])).unwrap();
    std::fs::write(&test, table(&all[64..88])).unwrap();
    let out = dir.path().join("model");
    let run = train_cli(&[
        "--train-file",
        &path_str(&train),
        "--test-file",
        &path_str(&test),
        "--label-column",
        "length",
        "--out",
        &path_str(&out),
    ]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("3 classes: long, medium, short"),
        "{stdout}"
    );
    assert!(stdout.contains("Macro F1: "), "{stdout}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(
        summary["train_size"], 57,
        "floor(0.9 · 64) rows, the rest held out"
    );
    assert!(summary["test_accuracy"].as_f64().is_some());
    // transformers loads the model with the file's label names.
    let printed = python(
        "reference.py",
        &[
            "logits",
            "--model",
            &path_str(&out),
            "--out",
            &path_str(dir.path()),
            "A short one.",
        ],
    );
    assert!(
        printed.contains("\"0\": \"long\"") && printed.contains("\"2\": \"short\""),
        "{printed}"
    );

    // Pairs from a JSON-lines file, found by their sentence1/sentence2 columns.
    let mut jsonl = String::new();
    for (i, pair) in all[..48].chunks(2).enumerate() {
        jsonl += &format!(
            "{}\n",
            serde_json::json!({"sentence1": pair[0], "sentence2": pair[1], "label": i % 2})
        );
    }
    let pairs = dir.path().join("pairs.jsonl");
    std::fs::write(&pairs, jsonl).unwrap();
    let run = train_cli(&[
        "--train-file",
        &path_str(&pairs),
        "--validation-split",
        "0.25",
        "--out",
        &path_str(&dir.path().join("pair_model")),
    ]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("on sentence1 + sentence2"), "{stdout}");
    assert!(
        stdout.contains("18 training samples, 6 validation samples"),
        "{stdout}"
    );
    // The pair model predicts pairs given two by two; an odd count is refused.
    let pair_model = path_str(&dir.path().join("pair_model"));
    let stdout = succeeded(&predict_cli(&[
        "--model",
        &pair_model,
        "--pairs",
        "The cat sat.",
        "It was tired.",
    ]));
    assert!(stdout.contains("The cat sat. | It was tired."), "{stdout}");
    let odd = predict_cli(&["--model", &pair_model, "--pairs", "One text."]);
    assert!(!odd.status.success());
    assert!(
        String::from_utf8_lossy(&odd.stderr).contains("two by two"),
        "{}",
        String::from_utf8_lossy(&odd.stderr)
    );
}

fn predict_cli(args: &[&str]) -> std::process::Output {
    cli(&["predict"]).args(args).output().unwrap()
}

/// What transformers says of a saved model on `texts`: its config and logits.
fn transformers_view(model: &Path, out: &Path, texts: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "logits".to_string(),
        "--model".into(),
        path_str(model),
        "--out".into(),
        path_str(out),
    ];
    args.extend(texts.iter().map(|t| t.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    serde_json::from_str(python("reference.py", &args).lines().last().unwrap()).unwrap()
}

/// Regression (float labels) and multi-label (a list column, and one 0/1 column per label)
/// train from files through the CLI, save with transformers' `problem_type`, load in
/// transformers with the same head and label names, and predict a file: our scores equal
/// transformers' logits (regression) and probabilities (multi-label) within 1e-4.
#[test]
fn regression_and_multi_label_train_save_load_and_predict() {
    let dir = tmp();
    let cola = Cola::load_split(settings::cola_dir(), Split::Train).unwrap();
    let all = cola.sentences();
    let words = |s: &str| s.split_whitespace().count();
    // Regression: a real sentence's length in words over ten, as a float column.
    let mut csv = String::from("sentence,label\n");
    for s in &all[..48] {
        csv += &format!("{},{:.1}\n", csv_field(s), words(s) as f64 / 10.0);
    }
    let train = dir.path().join("lengths.csv");
    std::fs::write(&train, csv).unwrap();
    let model = dir.path().join("regression");
    let stdout = succeeded(&train_cli(&[
        "--train-file",
        &path_str(&train),
        "--test-file",
        &path_str(&train),
        "--out",
        &path_str(&model),
    ]));
    assert!(
        stdout.contains("Task: regression of label on sentence"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Pearson: ") && stdout.contains("MSE: "),
        "{stdout}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("summary.json")).unwrap())
            .unwrap();
    assert!(summary["test_pearson"].as_f64().unwrap().is_finite());
    let texts = [
        "The cat sat.",
        "A much longer sentence about what the dog did today.",
    ];
    let theirs = transformers_view(&model, dir.path(), &texts);
    assert_eq!(theirs["problem_type"], "regression");
    assert_eq!(theirs["num_labels"], 1);
    // predict --file keeps the input's columns and adds the value.
    let input = dir.path().join("new.csv");
    std::fs::write(
        &input,
        format!("id,sentence\n7,{}\n8,{}\n", texts[0], csv_field(texts[1])),
    )
    .unwrap();
    let output = dir.path().join("new_predicted.csv");
    succeeded(&predict_cli(&[
        "--model",
        &path_str(&model),
        "--file",
        &path_str(&input),
        "--out",
        &path_str(&output),
    ]));
    let frame = read_table(&output, None).unwrap();
    let names: Vec<String> = frame
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(
        names,
        ["id", "sentence", "predicted_label", "predicted_score"]
    );
    let ids: Vec<i64> = frame
        .column("id")
        .unwrap()
        .i64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    assert_eq!(ids, [7, 8], "the input's columns are kept as they were");
    let ours: Vec<f64> = frame
        .column("predicted_score")
        .unwrap()
        .f64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    for (i, v) in ours.iter().enumerate() {
        let reference = theirs["logits"][i][0].as_f64().unwrap();
        assert!(
            (v - reference).abs() <= 1e-4,
            "row {i}: ours {v}, transformers {reference}"
        );
    }

    // Multi-label from a list column (JSON lines) and from 0/1 columns (CSV): same task.
    let tags = |s: &str| {
        let mut t = Vec::new();
        if words(s) <= 6 {
            t.push("short");
        }
        if s.contains(" the ") || s.starts_with("The ") {
            t.push("the");
        }
        if s.ends_with('?') || s.contains(',') {
            t.push("punct");
        }
        t
    };
    let mut jsonl = String::new();
    let mut columns = String::from("text,short,the,punct\n");
    for s in &all[..48] {
        let t = tags(s);
        jsonl += &format!("{}\n", serde_json::json!({"text": s, "label": t}));
        let has = |n: &str| i32::from(t.contains(&n));
        columns += &format!(
            "{},{},{},{}\n",
            csv_field(s),
            has("short"),
            has("the"),
            has("punct")
        );
    }
    let list_file = dir.path().join("tags.jsonl");
    let columns_file = dir.path().join("tags.csv");
    std::fs::write(&list_file, jsonl).unwrap();
    std::fs::write(&columns_file, columns).unwrap();
    let list_model = dir.path().join("multi_list");
    let stdout = succeeded(&train_cli(&[
        "--train-file",
        &path_str(&list_file),
        "--out",
        &path_str(&list_model),
    ]));
    assert!(
        stdout.contains("multi_label_classification on text (3 labels: punct, short, the)"),
        "{stdout}"
    );
    let columns_model = dir.path().join("multi_columns");
    let stdout = succeeded(&train_cli(&[
        "--train-file",
        &path_str(&columns_file),
        "--label-column",
        "short,the,punct",
        "--test-file",
        &path_str(&columns_file),
        "--out",
        &path_str(&columns_model),
    ]));
    assert!(stdout.contains("3 labels: short, the, punct"), "{stdout}");
    assert!(stdout.contains("Micro F1: "), "{stdout}");
    let theirs = transformers_view(&columns_model, dir.path(), &texts);
    assert_eq!(theirs["problem_type"], "multi_label_classification");
    assert_eq!(theirs["id2label"]["1"], "the");
    let stdout = succeeded(&predict_cli(&[
        "--model",
        &path_str(&columns_model),
        texts[0],
        texts[1],
    ]));
    assert!(stdout.contains("highest probability"), "{stdout}");
    let output = dir.path().join("tags_predicted.jsonl");
    succeeded(&predict_cli(&[
        "--model",
        &path_str(&columns_model),
        "--text-columns",
        "sentence",
        "--file",
        &path_str(&input),
        "--out",
        &path_str(&output),
    ]));
    let frame = read_table(&output, None).unwrap();
    for (j, name) in ["short", "the", "punct"].iter().enumerate() {
        let ours: Vec<f64> = frame
            .column(&format!("probability_{name}"))
            .unwrap()
            .f64()
            .unwrap()
            .into_no_null_iter()
            .collect();
        for (i, p) in ours.iter().enumerate() {
            let logit = theirs["logits"][i][j].as_f64().unwrap();
            let reference = 1.0 / (1.0 + (-logit).exp());
            assert!(
                (p - reference).abs() <= 1e-4,
                "{name}, row {i}: ours {p}, transformers {reference}"
            );
        }
    }
}

/// Each problem type's loss equals transformers' `BertForSequenceClassification(labels=…)` on
/// the same logits.
#[test]
fn the_loss_of_each_problem_type_is_transformers() {
    use bert_finetune::model::heads;
    let dir = tmp();
    let sentences: Vec<String> = sentences()[..6].to_vec();
    let cases = serde_json::json!([
        {"problem_type": "single_label_classification", "num_labels": 3, "labels": [0, 2, 1, 1, 0, 2]},
        {"problem_type": "regression", "num_labels": 1, "labels": [0.5, 3.25, -1.0, 2.0, 0.0, 4.5]},
        {"problem_type": "multi_label_classification", "num_labels": 4,
         "labels": [[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0],
                    [0.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 1.0]]},
    ]);
    let spec = dir.path().join("losses.json");
    std::fs::write(
        &spec,
        serde_json::json!({"sentences": sentences, "cases": cases}).to_string(),
    )
    .unwrap();
    let theirs: serde_json::Value = serde_json::from_str(&python(
        "reference.py",
        &[
            "losses",
            "--model",
            &path_str(&minilm()),
            "--spec",
            &path_str(&spec),
        ],
    ))
    .unwrap();
    for (i, case) in cases.as_array().unwrap().iter().enumerate() {
        let problem: ProblemType = case["problem_type"].as_str().unwrap().parse().unwrap();
        let logits: Vec<Vec<f32>> = serde_json::from_value(theirs[i]["logits"].clone()).unwrap();
        let logits = tch::Tensor::from_slice2(&logits);
        let labels = match problem {
            ProblemType::SingleLabelClassification => {
                let ids: Vec<i64> = serde_json::from_value(case["labels"].clone()).unwrap();
                tch::Tensor::from_slice(&ids)
            }
            ProblemType::Regression => {
                let v: Vec<f32> = serde_json::from_value(case["labels"].clone()).unwrap();
                tch::Tensor::from_slice(&v)
            }
            ProblemType::MultiLabelClassification => {
                let v: Vec<Vec<f32>> = serde_json::from_value(case["labels"].clone()).unwrap();
                tch::Tensor::from_slice2(&v)
            }
            ProblemType::TokenClassification
            | ProblemType::QuestionAnswering
            | ProblemType::MaskedLanguageModeling => {
                unreachable!("tests/heads.rs and tests/masked_lm.rs check their losses")
            }
        };
        let ours = heads::loss(problem, &logits, &labels)
            .unwrap()
            .double_value(&[]);
        let reference = theirs[i]["loss"].as_f64().unwrap();
        assert!(
            (ours - reference).abs() <= 1e-5,
            "{}: ours {ours}, transformers {reference}",
            problem.name()
        );
    }
    // Shapes that cannot be a head's are refused, not broadcast.
    let two = tch::Tensor::zeros([6, 2], (tch::Kind::Float, tch::Device::Cpu));
    assert!(heads::loss(ProblemType::Regression, &two, &two.select(1, 0)).is_err());
    assert!(heads::loss(
        ProblemType::MultiLabelClassification,
        &two,
        &two.select(1, 0)
    )
    .is_err());
}

/// The GLUE presets read a task's folder as the GLUE download lays it out (TSV, no quoting:
/// sentences keep their `"`), pick its columns and print the metric GLUE reports: MRPC F1
/// and accuracy, STS-B Pearson and Spearman (a regression), MNLI matched and mismatched.
#[test]
fn glue_presets_read_their_folders_and_report_glue_metrics() {
    let dir = tmp();
    let cola = Cola::load_split(settings::cola_dir(), Split::Train).unwrap();
    let all = cola.sentences();
    let quoted: Vec<&String> = all.iter().filter(|s| s.contains('"')).take(4).collect();
    assert!(!quoted.is_empty(), "CoLA has sentences with quotes");
    let rows = |offset: usize, n: usize| -> Vec<(String, String)> {
        (0..n)
            .map(|i| {
                let a = if i < quoted.len() {
                    quoted[i].clone()
                } else {
                    all[offset + 2 * i].clone()
                };
                (a, all[offset + 2 * i + 1].clone())
            })
            .collect()
    };
    let write = |task: &str,
                 file: &str,
                 header: &str,
                 line: &dyn Fn(usize, &(String, String)) -> String,
                 offset: usize| {
        let folder = dir.path().join(task);
        std::fs::create_dir_all(&folder).unwrap();
        let mut text = format!("{header}\n");
        for (i, pair) in rows(offset, 24).iter().enumerate() {
            text += &line(i, pair);
            text.push('\n');
        }
        std::fs::write(folder.join(file), text).unwrap();
        folder
    };
    let mrpc_line =
        |i: usize, (a, b): &(String, String)| format!("{}\t{i}\t{}\t{a}\t{b}", i % 2, i + 100);
    let mrpc_header = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String";
    write("MRPC", "train.tsv", mrpc_header, &mrpc_line, 0);
    let mrpc = write("MRPC", "dev.tsv", mrpc_header, &mrpc_line, 100);
    let stsb_line = |i: usize, (a, b): &(String, String)| {
        format!(
            "{i}\tmain-news\tf\t2012\t{i}\tnone\tnone\t{a}\t{b}\t{:.1}",
            (i % 6) as f64 * 0.8
        )
    };
    let stsb_header =
        "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore";
    write("STS-B", "train.tsv", stsb_header, &stsb_line, 0);
    let stsb = write("STS-B", "dev.tsv", stsb_header, &stsb_line, 100);
    let nli = ["entailment", "neutral", "contradiction"];
    let mnli_line = |i: usize, (a, b): &(String, String)| {
        format!(
            "{i}\t{i}\t{i}x\tfiction\t-\t-\t-\t-\t{a}\t{b}\t{}\t{}",
            nli[i % 3],
            nli[i % 3]
        )
    };
    let mnli_header = "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label";
    write("MNLI", "train.tsv", mnli_header, &mnli_line, 0);
    write("MNLI", "dev_matched.tsv", mnli_header, &mnli_line, 100);
    let mnli = write("MNLI", "dev_mismatched.tsv", mnli_header, &mnli_line, 200);

    let glue = |task: &str, folder: &Path| {
        train_cli(&[
            "--task",
            task,
            "--data",
            &path_str(folder),
            "--out",
            &path_str(&dir.path().join(format!("{task}_model"))),
        ])
    };
    let stdout = succeeded(&glue("mrpc", &mrpc));
    assert!(
        stdout.contains("on #1 String + #2 String (2 classes: 0, 1)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("GLUE mrpc") && stdout.contains(": f1 "),
        "{stdout}"
    );
    assert!(stdout.contains(", accuracy "), "{stdout}");
    let stdout = succeeded(&glue("stsb", &stsb));
    assert!(
        stdout.contains("Task: regression of score on sentence1 + sentence2"),
        "{stdout}"
    );
    assert!(
        stdout.contains("GLUE stsb") && stdout.contains(": pearson "),
        "{stdout}"
    );
    assert!(stdout.contains(", spearmanr "), "{stdout}");
    let stdout = succeeded(&glue("mnli", &mnli));
    assert!(
        stdout.contains("3 classes: contradiction, entailment, neutral"),
        "{stdout}"
    );
    assert!(
        stdout.contains("dev_matched.tsv): accuracy")
            && stdout.contains("dev_mismatched.tsv): accuracy"),
        "{stdout}"
    );
    // A folder without the task's files names what is missing (MNLI's has no dev.tsv) …
    let run = glue("qnli", &mnli);
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("--task qnli") && stderr.contains("dev.tsv is missing"),
        "{stderr}"
    );
    // … and one with another task's columns lists the ones it has.
    let run = glue("qnli", &mrpc);
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("no column \"label\"; its columns are Quality, #1 ID"),
        "{stderr}"
    );
}

/// Training controls that cannot work are refused before training, naming the flag; predict
/// never writes over its input.
#[test]
fn bad_training_controls_and_predict_outputs_are_refused() {
    let dir = tmp();
    let file = dir.path().join("three.csv");
    let mut csv = String::from("text,label\n");
    for (i, s) in sentences().iter().enumerate() {
        csv += &format!("{},{}\n", csv_field(s), ["a", "b", "c"][i % 3]);
    }
    std::fs::write(&file, csv).unwrap();
    let out = path_str(&dir.path().join("model"));
    let file = path_str(&file);
    let refused = |extra: &[&str], needle: &str| {
        let mut args = vec!["--train-file", file.as_str(), "--out", out.as_str()];
        args.extend(extra);
        let run = train_cli(&args);
        let stderr = String::from_utf8_lossy(&run.stderr).to_string();
        assert!(!run.status.success(), "{extra:?} was accepted");
        assert!(stderr.contains(needle), "{extra:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    };
    refused(
        &["--early-stopping-patience", "2"],
        "--early-stopping-patience 2: early stopping watches metric_for_best_model",
    );
    refused(
        &["--metric-for-best-model", "spearman"],
        "--metric-for-best-model spearman: use one of loss, accuracy",
    );
    refused(
        &["--metric-for-best-model", "pearson"],
        "--metric-for-best-model pearson: a single_label_classification run reports",
    );
    refused(
        &["--class-weights", "1,2"],
        "--class-weights [1.0, 2.0]: give one weight per class",
    );
    refused(&["--class-weights", "1,x,2"], "\"x\" is not a number");
    refused(
        &["--gradient-accumulation-steps", "0"],
        "--gradient-accumulation-steps 0",
    );
    assert!(!dir.path().join("model/model.safetensors").exists());

    // A good run, then predict --file may not overwrite its input.
    succeeded(&train_cli(&[
        "--train-file",
        &file,
        "--class-weights",
        "balanced",
        "--out",
        &out,
    ]));
    let before = std::fs::read(&file).unwrap();
    let run = predict_cli(&[
        "--model",
        &out,
        "--text-columns",
        "text",
        "--file",
        &file,
        "--out",
        &file,
    ]);
    assert!(!run.status.success());
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("that is the input file"),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(
        std::fs::read(&file).unwrap(),
        before,
        "the input is untouched"
    );
}

/// Every format trains a few steps and predicts a file of its own format back, keeping the
/// input's columns.
#[test]
fn every_format_trains_and_predicts_its_own_format() {
    let dir = tmp();
    let mut texts = sentences();
    texts.extend(sentences().iter().map(|s| format!("{s} Indeed.")));
    for (format, path) in write_all_formats(dir.path(), &texts) {
        let model = dir.path().join(format!("model_{format}"));
        succeeded(&train_cli(&[
            "--train-file",
            &path_str(&path),
            "--text-columns",
            "text",
            "--validation-split",
            "0.25",
            "--out",
            &path_str(&model),
        ]));
        let ext = path.extension().unwrap().to_str().unwrap().to_string();
        let out = dir.path().join(format!("predicted_{format}.{ext}"));
        succeeded(&predict_cli(&[
            "--model",
            &path_str(&model),
            "--file",
            &path_str(&path),
            "--out",
            &path_str(&out),
        ]));
        let frame = read_table(&out, None).unwrap();
        let names: Vec<String> = frame
            .get_column_names()
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(
            names,
            [
                "text",
                "label",
                "score",
                "predicted_label",
                "predicted_score"
            ],
            "{format}"
        );
        assert_eq!(frame.height(), texts.len(), "{format}");
        let predicted: Vec<String> = frame
            .column("predicted_label")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|v| v.unwrap_or_default().to_string())
            .collect();
        assert!(
            predicted
                .iter()
                .all(|p| ["bad", "good", "odd"].contains(&p.as_str())),
            "{format}: {predicted:?}"
        );
    }
}
