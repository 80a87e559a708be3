//! RoBERTa, XLM-RoBERTa, DistilBERT, ELECTRA, DeBERTa-v3 and ModernBERT against transformers
//! (`tests/python/families.py`): a real tokenizer of each kind trained on CoLA's sentences
//! (byte-level BPE; SentencePiece Unigram; WordPiece), small random models of every head built
//! by transformers (weights at `initializer_range` 0.2, so attention is far from uniform and a
//! wrong score term shows). Checked: token ids of single texts and pairs (`<s> a </s></s> b
//! </s>`; DistilBERT's token types ignored as its model has none), the logits of every head on
//! padded batches of both within 1e-4 at real positions, every layer's attention map as
//! `output_attentions` gives it, the sequence classifier's and the masked-LM head's loss and two
//! AdamW steps within 1e-4 (the masked-LM head through the masked-positions-only path the
//! Trainer uses), and folders saved here that transformers' `Auto*` classes load as the
//! family's classes with nothing missing or unused and the same logits. From the command line:
//! a sequence classifier per family, and token classification, QA and masked LM.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use bert_finetune::data::tokenizer::{pad_rows_with_types, BertTokenizer, Encoded, Padding};
use bert_finetune::data::ProblemType;
use bert_finetune::model::heads::{loss, masked_lm_loss};
use bert_finetune::model::{
    BertCheckpoint, BertForMaskedLM, BertForQuestionAnswering, BertForSequenceClassification,
    BertForTokenClassification,
};
use common::steps::{adamw, step, weights_match};
use common::*;
use tch::{Device, Kind, Tensor};

const TEXTS: [&str; 6] = [
    "The cat sat on the mat.",
    "Nobody expected the Spanish inquisition.",
    "Angela Merkel visited Paris in the spring of 2019.",
    "Him and me went.",
    "The more you read, the more books you want.",
    "Sue gave to Bill a book.",
];
/// Pairs: the first four texts, two by two.
const PAIRS: usize = 2;

struct Reference {
    dir: PathBuf,
    tensors: HashMap<String, Tensor>,
    json: serde_json::Value,
}

/// The transformers side of `family`, made once per test run and shared by the family's three
/// tests (parallel threads; the first to ask makes it, the others wait): making it (a tokenizer
/// trained, a random model of every head, their logits and steps) is the longest part of each
/// test. Each test writes only names of its own into the folder, under cargo's
/// `CARGO_TARGET_TMPDIR`, so the next run starts it afresh.
fn reference_dir(family: &str) -> PathBuf {
    static MADE: OnceLock<Mutex<HashMap<String, Arc<OnceLock<PathBuf>>>>> = OnceLock::new();
    let once = MADE
        .get_or_init(Default::default)
        .lock()
        .unwrap()
        .entry(family.to_string())
        .or_default()
        .clone();
    once.get_or_init(|| make_reference(family)).clone()
}

/// [`reference_dir`] with the logits, steps and token ids the parity test compares.
fn reference(family: &str) -> Reference {
    let dir = reference_dir(family);
    let tensors = read_tensors(&dir.join("reference.safetensors"));
    let json = serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
        .unwrap();
    Reference { dir, tensors, json }
}

fn make_reference(family: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("families")
        .join(family);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    let cola = cola_file(bert_finetune::data::cola::Split::Train);
    let mut args = vec![
        "reference".to_string(),
        "--family".into(),
        family.into(),
        "--cola".into(),
        path_str(&cola),
        "--out".into(),
        path_str(&dir),
        "--pairs".into(),
        PAIRS.to_string(),
    ];
    args.extend(TEXTS.iter().map(|s| s.to_string()));
    python("families.py", &args);
    dir
}

/// Rows of a padded `[n, width]` id tensor without their padding.
fn rows(ids: &Tensor, mask: &Tensor) -> Vec<Vec<i64>> {
    (0..ids.size()[0])
        .map(|i| {
            let n = mask.get(i).sum(Kind::Int64).int64_value(&[]);
            Vec::try_from(ids.get(i).narrow(0, 0, n)).unwrap()
        })
        .collect()
}

/// Our tokenizer's singles and pairs as padded batches (token types as it gives them).
fn our_batches(tokenizer: &BertTokenizer) -> (Encoded, Encoded, Vec<Vec<i64>>, Vec<Vec<i64>>) {
    let singles: Vec<Vec<i64>> = TEXTS.iter().map(|t| tokenizer.encode(t).unwrap()).collect();
    let firsts: Vec<&str> = TEXTS[..2 * PAIRS].iter().step_by(2).copied().collect();
    let seconds: Vec<&str> = TEXTS[1..2 * PAIRS].iter().step_by(2).copied().collect();
    let pairs = tokenizer.encode_pairs(&firsts, &seconds, 128).unwrap();
    let batch = |ids: Vec<&[i64]>, types: Option<Vec<&[i64]>>| {
        pad_rows_with_types(
            &ids,
            types.as_deref(),
            tokenizer.pad_id,
            128,
            Padding::Longest,
        )
    };
    let single = batch(singles.iter().map(Vec::as_slice).collect(), None);
    let pair = batch(
        pairs.iter().map(|(ids, _)| ids.as_slice()).collect(),
        Some(pairs.iter().map(|(_, t)| t.as_slice()).collect()),
    );
    let pair_types: Vec<Vec<i64>> = pairs.iter().map(|(_, t)| t.clone()).collect();
    (
        single,
        pair,
        singles,
        pairs
            .into_iter()
            .map(|(ids, _)| ids)
            .chain(pair_types)
            .collect(),
    )
}

/// Largest difference at real positions (`mask` `[n, width]`) of `[n, width, …]` tensors, or
/// over everything for `[n, k]` ones.
fn diff(a: &Tensor, b: &Tensor, mask: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    let a = a.to_kind(Kind::Double);
    let b = b.to_kind(Kind::Double);
    if a.dim() == 2 {
        return (a - b).abs().max().double_value(&[]);
    }
    let mut keep = mask.to_kind(Kind::Double);
    while keep.dim() < a.dim() {
        keep = keep.unsqueeze(-1);
    }
    ((a - b) * keep).abs().max().double_value(&[])
}

/// Every head's logits for a batch: `[n, k]`, or `[n, width, k]` (QA: start and end stacked).
fn logits_of(dir: &Path, batch: &Encoded) -> Vec<(&'static str, Tensor)> {
    let at = |head: &str| path_str(&dir.join(head));
    let clean = |report: &Option<bert_finetune::model::LoadReport>| {
        let report = report.as_ref().unwrap();
        assert!(report.is_clean(), "{report}");
    };
    let sequence =
        BertForSequenceClassification::from_pretrained(&at("sequence"), None, Device::Cpu).unwrap();
    clean(&sequence.load_report);
    let token =
        BertForTokenClassification::from_pretrained(&at("token"), None, Device::Cpu).unwrap();
    clean(&token.load_report);
    let qa = BertForQuestionAnswering::from_pretrained(&at("qa"), Device::Cpu).unwrap();
    clean(&qa.load_report);
    let mlm = BertForMaskedLM::from_pretrained(&at("mlm"), Device::Cpu).unwrap();
    clean(&mlm.load_report);
    let (start, end) = qa.logits(batch, false);
    vec![
        ("sequence", sequence.logits(batch, false)),
        ("token", token.logits(batch, false)),
        ("qa", Tensor::stack(&[start, end], -1)),
        ("mlm", mlm.logits(batch, false)),
    ]
}

/// Two steps with `loss_of`, each loss and then every weight against the reference's.
fn two_steps(model: &impl BertCheckpoint, r: &Reference, head: &str, loss_of: impl Fn() -> Tensor) {
    let (mut opt, mut schedule) = adamw(model.var_store());
    for (i, want) in r.json["steps"][head].as_array().unwrap().iter().enumerate() {
        let loss = loss_of();
        let (got, want) = (loss.double_value(&[]), want.as_f64().unwrap());
        assert!(
            (got - want).abs() <= 1e-4,
            "{head} step {i}: {got} vs {want}"
        );
        step(&mut opt, &mut schedule, &loss);
    }
    weights_match(
        bert_finetune::model::checkpoint::named_parameters_of(model.var_store()),
        &r.tensors,
        &format!("{head}_after"),
    );
}

fn family_matches_transformers(family: &str, class: &str) {
    let r = reference(family);
    let dir = r.dir.as_path();
    let tokenizer = BertTokenizer::from_dir(dir).unwrap();
    // RoBERTa's kind of tokenizer gives one token type; DistilBERT's and ELECTRA's give BERT's
    // two (DistilBERT's model, with no token-type table, ignores them).
    let one_type = !["distilbert", "electra", "deberta-v2", "modernbert"].contains(&family);
    assert_eq!(
        tokenizer.second_type,
        i64::from(!one_type),
        "{family}'s second token type"
    );
    let (single, pair, single_ids, pair_rows) = our_batches(&tokenizer);
    let t = &r.tensors;
    assert_eq!(
        single_ids,
        rows(&t["single_ids"], &t["single_mask"]),
        "single ids"
    );
    assert_eq!(
        pair_rows[..PAIRS].to_vec(),
        rows(&t["pair_ids"], &t["pair_mask"]),
        "pair ids (<s> a </s></s> b </s>)"
    );
    if one_type {
        assert!(pair_rows[PAIRS..].iter().flatten().all(|&ty| ty == 0));
    }
    // Words already split (token classification), as run_ner reads them.
    for (i, text) in TEXTS.iter().enumerate() {
        let words: Vec<&str> = text.split_whitespace().collect();
        let (ids, word_ids) = tokenizer.encode_words(&words).unwrap();
        let want = &r.json["words"];
        assert_eq!(
            serde_json::json!(ids),
            want["ids"][i],
            "word pieces of {text:?}"
        );
        assert_eq!(
            serde_json::json!(word_ids),
            want["word_ids"][i],
            "word ids of {text:?}"
        );
    }

    for (name, batch) in [("single", &single), ("pair", &pair)] {
        let mask = &t[&format!("{name}_mask")];
        for (head, logits) in logits_of(dir, batch) {
            let d = diff(&logits, &t[&format!("{head}_{name}")], mask);
            println!("{family} {head} logits, {name} texts: largest difference {d:.2e}");
            assert!(d <= 1e-4, "{family} {head} {name}: {d}");
        }
    }

    // ModernBERT's sequence head on [CLS] as well as on the mean (classifier_pooling).
    if dir.join("sequence-cls").exists() {
        let model = BertForSequenceClassification::from_pretrained(
            &path_str(&dir.join("sequence-cls")),
            None,
            Device::Cpu,
        )
        .unwrap();
        for (name, batch) in [("single", &single), ("pair", &pair)] {
            let want = &t[&format!("sequence-cls_{name}")];
            let d = diff(
                &model.logits(batch, false),
                want,
                &t[&format!("{name}_mask")],
            );
            println!("{family} sequence logits pooled at [CLS], {name} texts: {d:.2e}");
            assert!(d <= 1e-4, "{family} [CLS] pooling {name}: {d}");
        }
    }

    // Attention maps (the notebook's helper) as transformers' output_attentions, at real
    // queries and keys (DeBERTa's include its position terms).
    let at = |head: &str| path_str(&dir.join(head));
    let sequence =
        BertForSequenceClassification::from_pretrained(&at("sequence"), None, Device::Cpu).unwrap();
    let ours = sequence.attentions(&single).unwrap();
    assert_eq!(ours.len() as u64, r.json["layers"].as_u64().unwrap());
    let mask = t["single_mask"].to_kind(Kind::Double);
    let pairs = mask.unsqueeze(2) * mask.unsqueeze(1);
    for (i, map) in ours.iter().enumerate() {
        let want = t[&format!("attention_{i}")].to_kind(Kind::Double);
        let d = ((map.to_kind(Kind::Double) - want) * pairs.unsqueeze(1))
            .abs()
            .max()
            .double_value(&[]);
        println!("{family} attention layer {i}: largest difference {d:.2e}");
        assert!(d <= 1e-5, "{family} attention layer {i}: {d}");
    }

    // Two steps of the sequence classifier and of the masked-LM head (masked positions only).
    let labels = &t["sequence_labels"];
    two_steps(&sequence, &r, "sequence", || {
        loss(
            ProblemType::SingleLabelClassification,
            &sequence.logits(&single, false),
            labels,
        )
        .unwrap()
    });
    let mlm = BertForMaskedLM::from_pretrained(&at("mlm"), Device::Cpu).unwrap();
    let mlm_labels = &t["mlm_labels"];
    two_steps(&mlm, &r, "mlm", || {
        let (logits, picked) = mlm.masked_logits(&single, mlm_labels, None, false);
        masked_lm_loss(&logits, &picked).unwrap()
    });

    // Saved here, loaded by transformers' Auto classes: the family's classes, nothing
    // missing or unused, the same logits.
    let fresh = |head: &str| path_str(&dir.join(head));
    let save = |head: &str, saved: &Path| match head {
        "sequence" => {
            BertForSequenceClassification::from_pretrained(&fresh(head), None, Device::Cpu)
                .unwrap()
                .save_pretrained(saved, Some(&tokenizer))
                .map(drop)
        }
        "token" => BertForTokenClassification::from_pretrained(&fresh(head), None, Device::Cpu)
            .unwrap()
            .save_pretrained(saved, Some(&tokenizer))
            .map(drop),
        "qa" => BertForQuestionAnswering::from_pretrained(&fresh(head), Device::Cpu)
            .unwrap()
            .save_pretrained(saved, Some(&tokenizer))
            .map(drop),
        _ => BertForMaskedLM::from_pretrained(&fresh(head), Device::Cpu)
            .unwrap()
            .save_pretrained(saved, Some(&tokenizer))
            .map(drop),
    };
    for head in ["sequence", "token", "qa", "mlm"] {
        save(head, &dir.join(format!("saved-{head}"))).unwrap();
    }
    let mut args = vec![
        "load".to_string(),
        "--out".into(),
        path_str(dir),
        "--pairs".into(),
        PAIRS.to_string(),
    ];
    args.extend(TEXTS.iter().map(|s| s.to_string()));
    let report: serde_json::Value = serde_json::from_str(
        python("families.py", &args)
            .lines()
            .last()
            .unwrap_or_default(),
    )
    .unwrap();
    let loaded = read_tensors(&dir.join("loaded.safetensors"));
    for (head, task) in [
        ("sequence", "ForSequenceClassification"),
        ("token", "ForTokenClassification"),
        ("qa", "ForQuestionAnswering"),
        ("mlm", "ForMaskedLM"),
    ] {
        let h = &report[head];
        assert_eq!(h["class"], format!("{class}{task}"), "{head}: {h}");
        for key in ["missing", "unexpected", "mismatched"] {
            assert_eq!(h[key], serde_json::json!([]), "{head} {key}: {h}");
        }
        for name in ["single", "pair"] {
            let d = diff(
                &loaded[&format!("{head}_{name}")],
                &t[&format!("{head}_{name}")],
                &t[&format!("{name}_mask")],
            );
            assert!(d <= 1e-4, "{family} {head} {name} after saving: {d}");
        }
    }
}

#[test]
fn roberta_matches_transformers_for_every_head() {
    family_matches_transformers("roberta", "Roberta");
}

#[test]
fn xlm_roberta_matches_transformers_for_every_head() {
    family_matches_transformers("xlm-roberta", "XLMRoberta");
}

#[test]
fn distilbert_matches_transformers_for_every_head() {
    family_matches_transformers("distilbert", "DistilBert");
}

#[test]
fn electra_matches_transformers_for_every_head() {
    family_matches_transformers("electra", "Electra");
}

#[test]
fn deberta_v3_matches_transformers_for_every_head() {
    family_matches_transformers("deberta-v2", "DebertaV2");
}

/// Trains `family`'s random sequence classifier one epoch on CoLA-made sentence pairs with the
/// CLI, predicts the test file with the CLI, and has transformers load the saved folder and
/// predict the same rows: the family's class, every label equal, every score within 1e-6.
fn family_trains_from_the_cli(family: &str, class: &str) {
    let dir = reference_dir(family);
    let examples = root().join("data/examples");
    let out = dir.join("trained");
    let model = path_str(&dir.join("sequence"));
    let train = path_str(&examples.join("next_train.csv"));
    let test_file = dir.join("next_test.csv");
    // The first 60 test rows, so that both sides predict the same file.
    let text = std::fs::read_to_string(examples.join("next_test.csv")).unwrap();
    let mut csv = csv_head(&text, 61);
    csv.push('\n');
    std::fs::write(&test_file, csv).unwrap();
    succeeded(
        &cli(&[
            "train",
            "--model",
            &model,
            "--train-file",
            &train,
            "--limit",
            "192",
            "--lr",
            "1e-3",
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--max-len",
            "64",
            "--seed",
            "3",
            "--cpu",
            "--out",
            &path_str(&out),
        ])
        .output()
        .unwrap(),
    );
    let predicted = dir.join("predicted.csv");
    succeeded(
        &cli(&[
            "predict",
            "--model",
            &path_str(&out),
            "--file",
            &path_str(&test_file),
            "--out",
            &path_str(&predicted),
        ])
        .output()
        .unwrap(),
    );
    let args = [
        "predict".to_string(),
        "--out".into(),
        path_str(&out),
        "--file".into(),
        path_str(&test_file),
        "--ours".into(),
        path_str(&predicted),
    ];
    let theirs: serde_json::Value = serde_json::from_str(
        python("families.py", &args)
            .lines()
            .last()
            .unwrap_or_default(),
    )
    .unwrap();
    assert_eq!(
        theirs["architectures"],
        serde_json::json!([format!("{class}ForSequenceClassification")])
    );
    let rows = theirs["ours_labels"].as_array().unwrap().len();
    assert_eq!(rows, 60);
    assert_eq!(theirs["ours_labels"], theirs["labels"]);
    let mut worst = 0.0f64;
    for i in 0..rows {
        let (a, b) = (&theirs["ours_scores"][i], &theirs["scores"][i]);
        worst = worst.max((a.as_f64().unwrap() - b.as_f64().unwrap()).abs());
    }
    let scores: Vec<f64> = (0..rows)
        .map(|i| theirs["scores"][i].as_f64().unwrap())
        .collect();
    let (low, high) = (
        scores.iter().copied().fold(f64::MAX, f64::min),
        scores.iter().copied().fold(f64::MIN, f64::max),
    );
    println!("{family}: 60 predictions equal (scores {low:.6} to {high:.6}), within {worst:.1e}");
    // A small random model trained one short epoch scores every row alike to a few 1e-5: the
    // tolerance is well under that spread, so a row read differently would show.
    assert!(
        high - low > 2e-6,
        "the scores should differ between rows: {scores:?}"
    );
    assert!(worst <= 1e-6, "{family}: scores differ by {worst}");
}

/// The header and the first `lines - 1` rows of a CSV text whose quoted fields may hold
/// commas (never line breaks, in these files).
fn csv_head(text: &str, lines: usize) -> String {
    text.lines().take(lines).collect::<Vec<_>>().join("\n")
}

#[test]
fn modernbert_matches_transformers_for_every_head() {
    family_matches_transformers("modernbert", "ModernBert");
}

#[test]
fn roberta_trains_from_the_cli_and_transformers_predicts_alike() {
    family_trains_from_the_cli("roberta", "Roberta");
}

#[test]
fn xlm_roberta_trains_from_the_cli_and_transformers_predicts_alike() {
    family_trains_from_the_cli("xlm-roberta", "XLMRoberta");
}

#[test]
fn distilbert_trains_from_the_cli_and_transformers_predicts_alike() {
    family_trains_from_the_cli("distilbert", "DistilBert");
}

#[test]
fn electra_trains_from_the_cli_and_transformers_predicts_alike() {
    family_trains_from_the_cli("electra", "Electra");
}

#[test]
fn deberta_v3_trains_from_the_cli_and_transformers_predicts_alike() {
    family_trains_from_the_cli("deberta-v2", "DebertaV2");
}

/// Token classification, question answering and masked-LM adaptation of `family` from the
/// command line (`family`'s random models of those heads and its CoLA-trained tokenizer): each
/// trains a short epoch on the CoLA-made example files, predicts from the command line, and
/// its saved folder loads in transformers' Auto class of the task as the family's class, with
/// nothing missing; the adapted masked-LM model fills a mask as transformers' pipeline does.
fn family_trains_every_task_from_the_cli(family: &str, class: &str, mask: &str) {
    let dir = reference_dir(family);
    let dir = dir.as_path();
    let examples = root().join("data/examples");
    let at = |name: &str| path_str(&dir.join(name));
    let train = |args: &[&str]| {
        let mut all = vec![
            "train", "--cpu", "--epochs", "1", "--lr", "1e-3", "--seed", "3",
        ];
        all.extend_from_slice(args);
        succeeded(&cli(&all).output().unwrap());
    };
    train(&[
        "--model",
        &at("token"),
        "--train-file",
        &path_str(&examples.join("people_train.jsonl")),
        "--limit",
        "96",
        "--max-len",
        "64",
        "--out",
        &at("ner"),
    ]);
    let entities = succeeded(
        &cli(&[
            "predict",
            "--model",
            &at("ner"),
            "Mary gave the book to John .",
        ])
        .output()
        .unwrap(),
    );
    println!("{family} NER prediction:\n{entities}");
    train(&[
        "--model",
        &at("qa"),
        "--train-file",
        &path_str(&examples.join("who_train.jsonl")),
        "--limit",
        "48",
        "--max-len",
        "128",
        "--doc-stride",
        "32",
        "--out",
        &at("answers"),
    ]);
    let answer = succeeded(
        &cli(&[
            "predict",
            "--model",
            &at("answers"),
            "--question",
            "Who left?",
            "--context",
            "Kim stayed at home. Sandy left early.",
        ])
        .output()
        .unwrap(),
    );
    println!("{family} QA prediction:\n{answer}");
    let corpus = dir.join("corpus.txt");
    let text = std::fs::read_to_string(cola_file(bert_finetune::data::cola::Split::Train)).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .take(400)
        .filter_map(|l| l.split('\t').nth(3))
        .collect();
    std::fs::write(&corpus, lines.join("\n") + "\n").unwrap();
    train(&[
        "--mlm",
        "--model",
        &at("mlm"),
        "--train-file",
        &path_str(&corpus),
        "--max-len",
        "64",
        "--max-steps",
        "6",
        "--cache-dir",
        &at("token-cache"),
        "--out",
        &at("adapted"),
    ]);
    let filled = succeeded(
        &cli(&[
            "predict",
            "--model",
            &at("adapted"),
            &format!("The cat {mask} on the mat."),
        ])
        .output()
        .unwrap(),
    );
    println!("{family} fill-mask:\n{filled}");
    // The adapted model's top 5 equal transformers' fill-mask pipeline's: tokens, their text,
    // the sequences, scores within 1e-5.
    let text = format!("The cat {mask} on the mat.");
    let theirs: serde_json::Value = serde_json::from_str(
        python(
            "families.py",
            &[
                "fill".to_string(),
                "--out".into(),
                at("adapted"),
                text.clone(),
            ],
        )
        .lines()
        .last()
        .unwrap_or_default(),
    )
    .unwrap();
    let model = BertForMaskedLM::from_pretrained(&at("adapted"), Device::Cpu).unwrap();
    let tokenizer = BertTokenizer::from_dir(dir.join("adapted")).unwrap();
    let ours = bert_finetune::model::fill_mask::fill_mask(&model, &tokenizer, &[text], 5).unwrap();
    let candidates = &ours[0].masks[0].1;
    for (i, want) in theirs[0].as_array().unwrap().iter().enumerate() {
        let got = &candidates[i];
        assert_eq!(
            got.token,
            want["token"].as_i64().unwrap(),
            "{family} rank {i}"
        );
        assert_eq!(
            got.token_str,
            want["token_str"].as_str().unwrap(),
            "{family} rank {i}"
        );
        assert_eq!(
            got.sequence,
            want["sequence"].as_str().unwrap(),
            "{family} rank {i}"
        );
        let d = (got.score - want["score"].as_f64().unwrap()).abs();
        assert!(d <= 1e-5, "{family} rank {i}: score differs by {d}");
    }
    let report: serde_json::Value = serde_json::from_str(
        python(
            "families.py",
            &[
                "classes".to_string(),
                "--out".into(),
                path_str(dir),
                "--dirs".into(),
                [at("ner"), at("answers"), at("adapted")].join(","),
            ],
        )
        .lines()
        .last()
        .unwrap_or_default(),
    )
    .unwrap();
    for (folder, task) in [
        ("ner", "ForTokenClassification"),
        ("answers", "ForQuestionAnswering"),
        ("adapted", "ForMaskedLM"),
    ] {
        let got = &report[at(folder)];
        assert_eq!(got["class"], format!("{class}{task}"), "{folder}: {got}");
        assert_eq!(got["missing"], serde_json::json!([]), "{folder}: {got}");
        assert_eq!(got["unexpected"], serde_json::json!([]), "{folder}: {got}");
    }
}

#[test]
fn roberta_trains_every_task_from_the_cli() {
    family_trains_every_task_from_the_cli("roberta", "Roberta", "<mask>");
}

#[test]
fn modernbert_trains_from_the_cli_and_transformers_predicts_alike() {
    family_trains_from_the_cli("modernbert", "ModernBert");
}

#[test]
fn modernbert_trains_every_task_from_the_cli() {
    family_trains_every_task_from_the_cli("modernbert", "ModernBert", "[MASK]");
}

#[test]
fn deberta_v3_trains_every_task_from_the_cli() {
    family_trains_every_task_from_the_cli("deberta-v2", "DebertaV2", "[MASK]");
}

#[test]
fn distilbert_trains_every_task_from_the_cli() {
    family_trains_every_task_from_the_cli("distilbert", "DistilBert", "[MASK]");
}

#[test]
fn electra_trains_every_task_from_the_cli() {
    family_trains_every_task_from_the_cli("electra", "Electra", "[MASK]");
}

#[test]
fn xlm_roberta_trains_every_task_from_the_cli() {
    family_trains_every_task_from_the_cli("xlm-roberta", "XLMRoberta", "<mask>");
}
