//! Token-classification data: word pieces and their labels against transformers'
//! `word_ids()` and run_ner's alignment on real sentences, and the files (CoNLL, JSON lines)
//! read as run_ner reads them, with every bad input named.

mod common;

use bert_finetune::data::cola::{Cola, Split};
use bert_finetune::data::tagging::{
    align, b_to_i, read_tagged, tag_ids, tag_names, TaggedColumns, TaggedSentence,
};
use bert_finetune::model::pretrained::load_tokenizer;
use common::*;
use serde_json::{json, Value};

const TAGS: [&str; 5] = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"];

#[test]
fn word_pieces_and_aligned_labels_equal_transformers_for_real_sentences() {
    let cola =
        Cola::load_split(bert_finetune::runtime::settings::cola_dir(), Split::Train).unwrap();
    let sentences: Vec<Vec<String>> = cola
        .sentences()
        .iter()
        .step_by(37)
        .take(200)
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .collect();
    let labels: Vec<Vec<i64>> = sentences
        .iter()
        .enumerate()
        .map(|(i, words)| {
            (0..words.len())
                .map(|j| ((i * 7 + j * 3) % TAGS.len()) as i64)
                .collect()
        })
        .collect();
    let names: Vec<String> = TAGS.map(String::from).to_vec();
    let b_to_i = b_to_i(&names);
    assert_eq!(b_to_i, [0, 2, 2, 4, 4]);
    let tokenizer = load_tokenizer(minilm()).unwrap();
    for max_len in [12, 128] {
        let dir = tmp();
        let file = dir.path().join("case.json");
        std::fs::write(
            &file,
            json!({"tokenizer": path_str(&minilm()), "words": sentences, "labels": labels,
                   "max_len": max_len, "b_to_i": b_to_i})
            .to_string(),
        )
        .unwrap();
        let reference: Vec<Value> =
            serde_json::from_str(&python("alignment.py", &[&file])).unwrap();
        let mut cut = 0;
        for (i, (words, want)) in sentences.iter().zip(&reference).enumerate() {
            let ours = align(&tokenizer, words, &labels[i], max_len, None).unwrap();
            let all = align(&tokenizer, words, &labels[i], max_len, Some(&b_to_i)).unwrap();
            let word_ids: Vec<Value> = ours.word_ids.iter().map(|w| json!(w)).collect();
            assert_eq!(json!(ours.ids), want["ids"], "sentence {i}: {words:?}");
            assert_eq!(Value::Array(word_ids), want["word_ids"], "sentence {i}");
            assert_eq!(json!(ours.labels), want["labels"], "sentence {i}");
            assert_eq!(json!(all.labels), want["label_all"], "sentence {i}");
            cut += ours.words_cut;
        }
        if max_len == 12 {
            assert!(cut > 0, "a 12-piece limit cuts some words");
        } else {
            assert_eq!(cut, 0);
        }
    }
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let file = dir.join(name);
    std::fs::write(&file, text).unwrap();
    file
}

#[test]
fn conll_and_json_files_read_as_run_ner_reads_them() {
    let dir = tmp();
    let conll = write(
        dir.path(),
        "train.conll",
        "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP B-MISC\n\n\r\nPeter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n",
    );
    let sentences = read_tagged(&conll, &TaggedColumns::default(), None).unwrap();
    assert_eq!(
        sentences,
        [
            TaggedSentence {
                words: vec!["EU".into(), "rejects".into(), "German".into()],
                tags: vec!["B-ORG".into(), "O".into(), "B-MISC".into()],
            },
            TaggedSentence {
                words: vec!["Peter".into(), "Blackburn".into()],
                tags: vec!["B-PER".into(), "I-PER".into()],
            },
        ]
    );
    assert_eq!(
        tag_names(&sentences),
        ["B-MISC", "B-ORG", "B-PER", "I-PER", "O"]
    );

    // JSON lines: `tokens`/`ner_tags` wherever they are; integer tags named by the model.
    let jsonl = write(
        dir.path(),
        "train.jsonl",
        "{\"id\": \"0\", \"ner_tags\": [1, 2, 0], \"tokens\": [\"Peter\", \"Blackburn\", \"spoke\"]}\n",
    );
    let names: Vec<String> = TAGS.map(String::from).to_vec();
    let s = read_tagged(&jsonl, &TaggedColumns::default(), Some(&names)).unwrap();
    assert_eq!(s[0].tags, ["B-PER", "I-PER", "O"]);
    // Otherwise the first two fields, or those named.
    let other = write(
        dir.path(),
        "other.json",
        "[{\"w\": [\"a\", \"b\"], \"t\": [\"O\", \"B-LOC\"]}]",
    );
    assert_eq!(
        read_tagged(&other, &TaggedColumns::default(), None).unwrap()[0].tags,
        ["O", "B-LOC"]
    );
    let columns = TaggedColumns {
        words: Some("t".into()),
        tags: Some("w".into()),
    };
    assert_eq!(
        read_tagged(&other, &columns, None).unwrap()[0].words,
        ["O", "B-LOC"]
    );
}

#[test]
fn bad_tagging_files_are_errors_naming_file_line_and_field() {
    let dir = tmp();
    let err = |file: &std::path::Path| {
        format!(
            "{:#}",
            read_tagged(file, &TaggedColumns::default(), None).unwrap_err()
        )
    };
    let f = write(dir.path(), "one.conll", "EU B-ORG\nrejects\n");
    let e = err(&f);
    assert!(
        e.contains("one.conll line 2") && e.contains("one column"),
        "{e}"
    );
    let f = write(
        dir.path(),
        "ragged.jsonl",
        "{\"tokens\": [\"a\"], \"ner_tags\": [\"O\"]}\n{\"tokens\": [\"a\", \"b\"], \"ner_tags\": [\"O\"]}\n",
    );
    let e = err(&f);
    assert!(
        e.contains("ragged.jsonl line 2")
            && e.contains("2 words in `tokens` but 1 tags in `ner_tags`"),
        "{e}"
    );
    let f = write(
        dir.path(),
        "missing.jsonl",
        "{\"tokens\": [\"a\"], \"tags\": 3}\n",
    );
    let e = read_tagged(
        &f,
        &TaggedColumns {
            words: None,
            tags: Some("labels".into()),
        },
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("line 1") && e.contains("no field `labels`") && e.contains("tokens, tags"),
        "{e}"
    );
    let f = write(dir.path(), "broken.jsonl", "{\"tokens\": [\"a\"\n");
    assert!(err(&f).contains("broken.jsonl line 1: not valid JSON"));
    let f = write(dir.path(), "empty.conll", "\n-DOCSTART- O\n\n");
    assert!(err(&f).contains("holds no sentences"));
    let f = write(dir.path(), "x.csv", "a,b\n");
    assert!(err(&f).contains("cannot tell the format"));

    // A tag the model never saw: named with its sentence.
    let sentences = vec![TaggedSentence {
        words: vec!["Lyon".into()],
        tags: vec!["B-CITY".into()],
    }];
    let names: Vec<String> = TAGS.map(String::from).to_vec();
    let e = tag_ids(&sentences, &names, std::path::Path::new("test.conll"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("test.conll sentence 1") && e.contains("\"B-CITY\""),
        "{e}"
    );
}
