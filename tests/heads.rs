//! The token-classification and question-answering heads against transformers on the same
//! small random BERTs and real sentences (`tests/python/heads.py`): logits and losses within
//! 1e-4, two AdamW steps within 1e-4, loading from a base checkpoint as transformers reports
//! it, and a saved folder that transformers' `Auto*` classes load with nothing missing and the
//! same logits.

mod common;

use bert_finetune::model::heads::{question_answering_loss, token_classification_loss};
use bert_finetune::model::{BertForQuestionAnswering, BertForTokenClassification};
use common::steps::{adamw, step, weights_match};
use common::*;
use tch::{Device, Kind, Tensor};

/// The first two have the same number of word pieces: the QA step batch has no padding.
const SENTENCES: [&str; 4] = [
    "The cat sat on the mat.",
    "The dog ran in the park.",
    "Angela Merkel visited Paris in the spring of 2019.",
    "Nobody expected the Spanish inquisition, least of all the visitors from Lyon.",
];

fn reference(
    dir: &std::path::Path,
) -> (std::collections::HashMap<String, Tensor>, serde_json::Value) {
    let mut args = vec![
        "reference".to_string(),
        "--tokenizer".into(),
        path_str(&minilm()),
        "--out".into(),
        path_str(dir),
    ];
    args.extend(SENTENCES.iter().map(|s| s.to_string()));
    python("heads.py", &args);
    let tensors = read_tensors(&dir.join("reference.safetensors"));
    let json = serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
        .unwrap();
    (tensors, json)
}

/// Largest difference at real (unpadded) positions of `[batch, seq, …]` tensors.
fn diff_at_real(a: &Tensor, b: &Tensor, mask: &Tensor) -> f64 {
    let mut keep = mask.to_kind(Kind::Double);
    while keep.dim() < a.dim() {
        keep = keep.unsqueeze(-1);
    }
    ((a.to_kind(Kind::Double) - b.to_kind(Kind::Double)) * keep)
        .abs()
        .max()
        .double_value(&[])
}

#[test]
fn token_classification_matches_transformers_logits_loss_and_two_steps() {
    let dir = tmp();
    let (r, json) = reference(dir.path());
    let (ids, mask, types) = (&r["input_ids"], &r["attention_mask"], &r["token_type_ids"]);
    let model = BertForTokenClassification::from_pretrained(
        &path_str(&dir.path().join("token")),
        None,
        Device::Cpu,
    )
    .unwrap();
    assert!(
        model.load_report.as_ref().unwrap().is_clean(),
        "{:?}",
        model.load_report
    );
    assert_eq!(model.config.label_name(1), "B-PER");
    let logits = model.forward(ids, mask, types, false);
    let d = diff_at_real(&logits, &r["token_logits"], mask);
    println!("token logits differ by {d:.2e} at real positions");
    assert!(d <= 1e-4);
    let loss = token_classification_loss(&logits, &r["token_labels"]).unwrap();
    let want = json["losses"]["token"].as_f64().unwrap();
    assert!(
        (loss.double_value(&[]) - want).abs() <= 1e-4,
        "{loss} vs {want}"
    );

    let (mut opt, mut schedule) = adamw(&model.vs);
    for (i, want) in json["steps"]["token"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let loss =
            token_classification_loss(&model.forward(ids, mask, types, false), &r["token_labels"])
                .unwrap();
        let want = want.as_f64().unwrap();
        assert!(
            (loss.double_value(&[]) - want).abs() <= 1e-4,
            "step {i}: {loss} vs {want}"
        );
        step(&mut opt, &mut schedule, &loss);
    }
    weights_match(model.named_parameters(), &r, "token_after");
}

#[test]
fn question_answering_matches_transformers_logits_clamped_loss_and_two_steps() {
    let dir = tmp();
    let (r, json) = reference(dir.path());
    let (ids, mask, types) = (&r["input_ids"], &r["attention_mask"], &r["token_type_ids"]);
    let model =
        BertForQuestionAnswering::from_pretrained(&path_str(&dir.path().join("qa")), Device::Cpu)
            .unwrap();
    assert!(
        model.load_report.as_ref().unwrap().is_clean(),
        "{:?}",
        model.load_report
    );
    let (start, end) = model.forward(ids, mask, types, false);
    let d = diff_at_real(&start, &r["start_logits"], mask).max(diff_at_real(
        &end,
        &r["end_logits"],
        mask,
    ));
    println!("span logits differ by {d:.2e} at real positions");
    assert!(d <= 1e-4);
    // Padding can hold no span.
    let padded_max = start.masked_select(&mask.eq(0)).max().double_value(&[]);
    assert_eq!(
        padded_max,
        bert_finetune::model::question_answering::PADDING_LOGIT
    );

    // Row by row (no padding): transformers' loss, the last row's end clamped and ignored.
    let lengths: Vec<i64> = Vec::try_from(mask.sum_dim_intlist(1, false, Kind::Int64)).unwrap();
    for (i, want) in json["losses"]["qa_rows"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let n = lengths[i];
        let row = |t: &Tensor| t.narrow(0, i as i64, 1).narrow(1, 0, n);
        let (s, e) = model.forward(&row(ids), &row(mask), &row(types), false);
        let loss = question_answering_loss(
            &s,
            &e,
            &r["start_positions"].narrow(0, i as i64, 1),
            &r["end_positions"].narrow(0, i as i64, 1),
        )
        .unwrap();
        let want = want.as_f64().unwrap();
        assert!(
            (loss.double_value(&[]) - want).abs() <= 1e-4,
            "row {i}: {loss} vs {want}"
        );
    }

    let (ids, mask) = (&r["qa_step_input_ids"], &r["qa_step_attention_mask"]);
    let types = ids.zeros_like();
    let (mut opt, mut schedule) = adamw(&model.vs);
    for (i, want) in json["steps"]["qa"].as_array().unwrap().iter().enumerate() {
        let (s, e) = model.forward(ids, mask, &types, false);
        let loss = question_answering_loss(&s, &e, &r["qa_step_start"], &r["qa_step_end"]).unwrap();
        let want = want.as_f64().unwrap();
        assert!(
            (loss.double_value(&[]) - want).abs() <= 1e-4,
            "step {i}: {loss} vs {want}"
        );
        step(&mut opt, &mut schedule, &loss);
    }
    weights_match(model.named_parameters(), &r, "qa_after");
}

#[test]
fn heads_load_from_a_base_checkpoint_and_save_what_transformers_auto_classes_load() {
    let dir = tmp();
    let (r, _) = reference(dir.path());
    let base = path_str(&dir.path().join("base"));
    // From a base model, as transformers: the head is new, the pooler is not used.
    let tagger = BertForTokenClassification::from_pretrained(&base, 5, Device::Cpu).unwrap();
    let report = tagger.load_report.clone().unwrap();
    assert_eq!(
        report.missing,
        ["classifier.bias", "classifier.weight"],
        "{report}"
    );
    assert_eq!(
        report.unexpected,
        ["pooler.dense.bias", "pooler.dense.weight"],
        "{report}"
    );
    let qa = BertForQuestionAnswering::from_pretrained(&base, Device::Cpu).unwrap();
    assert_eq!(
        qa.load_report.as_ref().unwrap().missing,
        ["qa_outputs.bias", "qa_outputs.weight"]
    );
    // A tagger's checkpoint read as a question-answering model: its classifier is not used.
    let from_tagger = BertForQuestionAnswering::from_pretrained(
        &path_str(&dir.path().join("token")),
        Device::Cpu,
    )
    .unwrap();
    assert_eq!(
        from_tagger.load_report.as_ref().unwrap().unexpected,
        ["classifier.bias", "classifier.weight"]
    );

    // Saved by us with label names, loaded by transformers' Auto classes.
    let mut tagger = tagger;
    tagger
        .config
        .set_labels(&["O", "B-PER", "I-PER", "B-LOC", "I-LOC"].map(String::from));
    let tokenizer = bert_finetune::model::pretrained::load_tokenizer(minilm()).unwrap();
    let out = tmp();
    tagger
        .save_pretrained(out.path().join("token"), Some(&tokenizer))
        .unwrap();
    qa.save_pretrained(out.path().join("qa"), Some(&tokenizer))
        .unwrap();
    let mut args = vec![
        "load".to_string(),
        "--tokenizer".into(),
        path_str(&minilm()),
        "--out".into(),
        path_str(out.path()),
    ];
    args.extend(SENTENCES.iter().map(|s| s.to_string()));
    let loaded: serde_json::Value = serde_json::from_str(&python("heads.py", &args)).unwrap();
    for (name, class) in [
        ("token", "BertForTokenClassification"),
        ("qa", "BertForQuestionAnswering"),
    ] {
        let info = &loaded[name];
        assert_eq!(info["class"], class, "{info}");
        for key in ["missing", "unexpected", "mismatched"] {
            assert_eq!(info[key], serde_json::json!([]), "{name} {key}: {info}");
        }
    }
    assert_eq!(loaded["token"]["id2label"]["1"], "B-PER");
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("token/config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        config["architectures"],
        serde_json::json!(["BertForTokenClassification"])
    );
    assert_eq!(config["label2id"]["I-LOC"], 4);

    let theirs = read_tensors(&out.path().join("loaded.safetensors"));
    let mask = &theirs["attention_mask"];
    let (ids, types) = (&r["input_ids"], &r["token_type_ids"]);
    let d = diff_at_real(
        &tagger.forward(ids, mask, types, false),
        &theirs["token_logits"],
        mask,
    );
    assert!(
        d <= 1e-4,
        "tagger logits after the round trip differ by {d}"
    );
    let (s, e) = qa.forward(ids, mask, types, false);
    let d = diff_at_real(&s, &theirs["start_logits"], mask).max(diff_at_real(
        &e,
        &theirs["end_logits"],
        mask,
    ));
    assert!(d <= 1e-4, "span logits after the round trip differ by {d}");
}

#[test]
fn entities_equal_the_token_classification_pipeline_with_simple_aggregation() {
    let dir = tmp();
    reference(dir.path());
    let folder = path_str(&dir.path().join("token"));
    let tagger = BertForTokenClassification::from_pretrained(&folder, None, Device::Cpu).unwrap();
    let tokenizer = bert_finetune::model::pretrained::load_tokenizer(&folder).unwrap();
    let ours =
        bert_finetune::model::entities::predict_entities(&tagger, &tokenizer, &SENTENCES).unwrap();
    let mut args = vec![
        "pipeline".to_string(),
        "--tokenizer".into(),
        path_str(&minilm()),
        "--out".into(),
        path_str(dir.path()),
    ];
    args.extend(SENTENCES.iter().map(|s| s.to_string()));
    let theirs: Vec<Vec<serde_json::Value>> =
        serde_json::from_str(&python("heads.py", &args)).unwrap();
    let mut found = 0;
    for (tagged, want) in ours.iter().zip(&theirs) {
        assert_eq!(
            tagged.entities.len(),
            want.len(),
            "{}: {:?} vs {want:?}",
            tagged.text,
            tagged.entities
        );
        for (e, w) in tagged.entities.iter().zip(want) {
            assert_eq!(
                e.kind,
                w["entity_group"].as_str().unwrap(),
                "{}",
                tagged.text
            );
            assert_eq!(
                (e.start as u64, e.end as u64),
                (w["start"].as_u64().unwrap(), w["end"].as_u64().unwrap())
            );
            assert!(
                (e.score - w["score"].as_f64().unwrap()).abs() < 1e-5,
                "{e:?} vs {w}"
            );
            assert_eq!(
                e.word,
                tagged
                    .text
                    .chars()
                    .skip(e.start)
                    .take(e.end - e.start)
                    .collect::<String>()
            );
            found += 1;
        }
    }
    assert!(found > 0, "the random tagger finds some entities");
    // The notebook's view: the text with its entities marked.
    let html = bert_finetune::runtime::display::Rich::html(&ours[2])
        .unwrap()
        .0;
    assert!(html.contains("<mark") || ours[2].entities.is_empty());
}
