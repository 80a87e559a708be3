//! The masked-LM head against transformers' `BertForMaskedLM` on a small random BERT and real
//! sentences (`tests/python/masked_lm.py`): logits and loss within 1e-4, two AdamW steps within
//! 1e-4 with the decoder tied to the word embeddings, a checkpoint of the older layout (the
//! tied decoder and the next-sentence head written out), a base checkpoint that has no head,
//! and a saved folder `AutoModelForMaskedLM` loads with nothing missing and the same logits.

mod common;

use bert_finetune::model::heads::masked_lm_loss;
use bert_finetune::model::BertForMaskedLM;
use common::steps::{adamw, step, weights_match};
use common::*;
use tch::{Device, Kind, Tensor};

const SENTENCES: [&str; 3] = [
    "The cat sat on the mat.",
    "Angela Merkel visited Paris in the spring of 2019.",
    "Nobody expected the Spanish inquisition, least of all the visitors from Lyon.",
];

fn run(command: &str, out: &std::path::Path) -> String {
    let mut args = vec![
        command.to_string(),
        "--tokenizer".into(),
        path_str(&minilm()),
        "--out".into(),
        path_str(out),
    ];
    args.extend(SENTENCES.iter().map(|s| s.to_string()));
    python("masked_lm.py", &args)
}

/// Largest difference at real (unpadded) positions of `[batch, seq, vocab]` logits.
fn diff_at_real(a: &Tensor, b: &Tensor, mask: &Tensor) -> f64 {
    ((a.to_kind(Kind::Double) - b.to_kind(Kind::Double)) * mask.to_kind(Kind::Double).unsqueeze(-1))
        .abs()
        .max()
        .double_value(&[])
}

#[test]
fn masked_lm_matches_transformers_logits_loss_and_two_tied_steps() {
    let dir = tmp();
    run("reference", dir.path());
    let r = read_tensors(&dir.path().join("reference.safetensors"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("reference.json")).unwrap())
            .unwrap();
    let (ids, mask, types) = (&r["input_ids"], &r["attention_mask"], &r["token_type_ids"]);
    let model =
        BertForMaskedLM::from_pretrained(&path_str(&dir.path().join("mlm")), Device::Cpu).unwrap();
    let report = model.load_report.clone().unwrap();
    assert!(report.is_clean(), "{report}");
    let logits = model.forward(ids, mask, types, false);
    let d = diff_at_real(&logits, &r["logits"], mask);
    println!("masked-LM logits differ by {d:.2e} at real positions");
    assert!(d <= 1e-4, "{d}");
    let loss = masked_lm_loss(&logits, &r["labels"]).unwrap();
    let want = json["losses"]["mlm"].as_f64().unwrap();
    assert!(
        (loss.double_value(&[]) - want).abs() <= 1e-4,
        "{loss} vs {want}"
    );

    // The decoder is the embedding table: one parameter, listed once, as transformers lists it.
    let names: Vec<String> = model
        .named_parameters()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(!names.iter().any(|n| n.contains("decoder")), "{names:?}");
    let (mut opt, mut schedule) = adamw(&model.vs);
    for (i, want) in json["steps"].as_array().unwrap().iter().enumerate() {
        let loss = masked_lm_loss(&model.forward(ids, mask, types, false), &r["labels"]).unwrap();
        let want = want.as_f64().unwrap();
        assert!(
            (loss.double_value(&[]) - want).abs() <= 1e-4,
            "step {i}: {loss} vs {want}"
        );
        step(&mut opt, &mut schedule, &loss);
    }
    weights_match(model.named_parameters(), &r, "after");
}

#[test]
fn masked_lm_loads_old_layouts_and_base_models_and_saves_what_transformers_loads() {
    let dir = tmp();
    run("reference", dir.path());
    let r = read_tensors(&dir.path().join("reference.safetensors"));
    let (ids, mask, types) = (&r["input_ids"], &r["attention_mask"], &r["token_type_ids"]);

    // bert-base-uncased's layout: the tied decoder written out is no parameter of its own (not
    // reported), its bias is the head's bias, the next-sentence head is not used.
    let old =
        BertForMaskedLM::from_pretrained(&path_str(&dir.path().join("old_layout")), Device::Cpu)
            .unwrap();
    let report = old.load_report.clone().unwrap();
    assert!(report.missing.is_empty(), "{report}");
    assert_eq!(
        report.unexpected,
        ["cls.seq_relationship.bias", "cls.seq_relationship.weight"],
        "{report}"
    );
    let d = diff_at_real(&old.forward(ids, mask, types, false), &r["logits"], mask);
    assert!(d <= 1e-4, "old layout logits differ by {d}");

    // A sentence-embedding checkpoint (MiniLM) has no head: it starts fresh, and says so.
    let base = BertForMaskedLM::from_pretrained(&path_str(&minilm()), Device::Cpu).unwrap();
    let report = base.load_report.clone().unwrap();
    assert_eq!(
        report.missing,
        [
            "cls.predictions.bias",
            "cls.predictions.transform.LayerNorm.bias",
            "cls.predictions.transform.LayerNorm.weight",
            "cls.predictions.transform.dense.bias",
            "cls.predictions.transform.dense.weight",
        ],
        "{report}"
    );

    // Saved by us, loaded by AutoModelForMaskedLM: nothing missing, the tie restored.
    let tokenizer = bert_finetune::model::pretrained::load_tokenizer(minilm()).unwrap();
    let model =
        BertForMaskedLM::from_pretrained(&path_str(&dir.path().join("mlm")), Device::Cpu).unwrap();
    model
        .save_pretrained(dir.path().join("saved"), Some(&tokenizer))
        .unwrap();
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("saved/config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        config["architectures"],
        serde_json::json!(["BertForMaskedLM"])
    );
    let loaded: serde_json::Value = serde_json::from_str(&run("load", dir.path())).unwrap();
    assert_eq!(loaded["class"], "BertForMaskedLM", "{loaded}");
    for key in ["missing", "unexpected", "mismatched"] {
        assert_eq!(loaded[key], serde_json::json!([]), "{key}: {loaded}");
    }
    assert_eq!(loaded["tied"], true, "{loaded}");
    let theirs = read_tensors(&dir.path().join("loaded.safetensors"));
    let mask = &theirs["attention_mask"];
    let plain = bert_finetune::model::pretrained::load_tokenizer(minilm())
        .unwrap()
        .encode_batch(
            &SENTENCES,
            64,
            bert_finetune::data::tokenizer::Padding::Longest,
        )
        .unwrap();
    let ours = model.forward(&plain.input_ids, mask, &plain.token_type_ids, false);
    let d = diff_at_real(&ours, &theirs["logits"], mask);
    assert!(d <= 1e-4, "logits after the round trip differ by {d}");
}
