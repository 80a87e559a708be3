//! Parity with PyTorch + transformers: same checkpoint, same inputs, fp32 on the CPU.
//! Tolerance: max |Δ| ≤ 1e-4 on hidden states, pooled output and logits; attention
//! probabilities (which lie in [0, 1]) within 1e-5.

mod common;

use bert_finetune::data::cola::{Cola, Split};
use bert_finetune::data::tokenizer::{BertTokenizer, Encoded, Padding};
use bert_finetune::model::{BertConfig, BertForSequenceClassification};
use common::*;
use tch::{Device, Kind};

const TOLERANCE: f64 = 1e-4;
/// Attention probabilities agree to about 1e-6 on MiniLM; the bound leaves room for other
/// BLAS builds without hiding a real mistake (a wrong mask or scale moves them by 1e-2 or more).
const ATTENTION_TOLERANCE: f64 = 1e-5;

fn sentences() -> Vec<String> {
    [
        "Our friends won't buy this analysis, let alone the next one we propose.",
        "They investigated.",
        "The more we study verbs, the crazier they get.",
        "Susan whispered \"Shut up\".",
        "Any zebras can't fly, but this sentence is deliberately quite a bit longer than the rest.",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Runs the Rust model on Python's own ids and mask and compares every output.
fn check_outputs(out_dir: &std::path::Path) {
    let reference = read_tensors(&out_dir.join("reference.safetensors"));
    let model_dir = out_dir.join("model");
    let model = BertForSequenceClassification::from_pretrained(
        model_dir.to_str().unwrap(),
        reference["logits"].size()[1] as usize,
        Device::Cpu,
    )
    .unwrap();
    assert!(
        model.load_report.as_ref().unwrap().is_clean(),
        "{}",
        model.load_report.as_ref().unwrap()
    );
    let ids = &reference["input_ids"];
    let mask = &reference["attention_mask"];
    let types = ids.zeros_like();
    let out = tch::no_grad(|| model.bert.forward(ids, mask, &types, false));
    let logits = tch::no_grad(|| model.forward(ids, mask, &types, false));

    // Padding positions carry no meaning; compare real tokens only.
    let keep = mask.unsqueeze(-1).to_kind(Kind::Float);
    let hidden_diff = max_abs_diff(
        &(&out.last_hidden_state * &keep),
        &(&reference["last_hidden_state"] * &keep),
    );
    let pooled_diff = max_abs_diff(
        out.pooler_output.as_ref().unwrap(),
        &reference["pooler_output"],
    );
    let logits_diff = max_abs_diff(&logits, &reference["logits"]);
    println!(
        "max |Δ|: hidden {hidden_diff:.2e}, pooled {pooled_diff:.2e}, logits {logits_diff:.2e}"
    );
    assert!(
        hidden_diff <= TOLERANCE,
        "last_hidden_state differs by {hidden_diff}"
    );
    assert!(
        pooled_diff <= TOLERANCE,
        "pooler_output differs by {pooled_diff}"
    );
    assert!(logits_diff <= TOLERANCE, "logits differ by {logits_diff}");

    // Our own encoder must produce Python's ids and mask too.
    let tokenizer = BertTokenizer::from_dir(&model_dir).unwrap();
    let ours = tokenizer
        .encode_batch(&sentences(), 512, Padding::Longest)
        .unwrap();
    assert!(ours.input_ids.equal(ids) && ours.attention_mask.equal(mask));
}

#[test]
fn token_ids_match_python_for_all_of_cola_train() {
    let dir = tmp();
    let out = dir.path().join("ids.json");
    let long = "word ".repeat(100);
    let extra = ["", long.trim(), "Çà et là, naïve café résumé — 東京 ﬁ x²"];
    let (model, data, out) = (
        path_str(&minilm()),
        path_str(&cola_file(Split::Train)),
        path_str(&out),
    );
    let options = [
        "tokenize",
        "--model",
        &model,
        "--data",
        &data,
        "--out",
        &out,
        "--max-len",
        "64",
        "--extra",
    ];
    let args = argv(&options, &extra.map(String::from));
    python("reference.py", &args);
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();

    let tokenizer = BertTokenizer::from_dir(minilm()).unwrap();
    let train =
        Cola::load_split(bert_finetune::runtime::settings::cola_dir(), Split::Train).unwrap();
    let python_ids = reference["ids"].as_array().unwrap();
    assert_eq!(python_ids.len(), 8551);
    for (i, (sentence, expected)) in train.sentences().iter().zip(python_ids).enumerate() {
        let expected: Vec<i64> = serde_json::from_value(expected.clone()).unwrap();
        assert_eq!(
            tokenizer.encode(sentence).unwrap(),
            expected,
            "sentence {i}: {sentence:?}"
        );
    }
    for s in extra {
        let expected: Vec<i64> = serde_json::from_value(reference["extra"][s].clone()).unwrap();
        let ours = tokenizer.encode_truncated(&[s.to_string()], 64).unwrap();
        assert_eq!(ours[0], expected, "{s:?}");
    }
}

#[test]
fn minilm_matches_transformers_to_1e_4() {
    let dir = tmp();
    let (model, out) = (path_str(&minilm()), path_str(dir.path()));
    let args = argv(
        &["pretrained", "--model", &model, "--out", &out],
        &sentences(),
    );
    python("reference.py", &args);
    check_outputs(dir.path());
}

#[test]
fn minilm_attentions_match_transformers_eager_output_attentions() {
    let dir = tmp();
    let (model_path, out) = (path_str(&minilm()), path_str(dir.path()));
    let padded = sentences()[..3].to_vec();
    let args = argv(
        &["attentions", "--model", &model_path, "--out", &out],
        &padded,
    );
    python("reference.py", &args);
    let reference = read_tensors(&dir.path().join("attentions.safetensors"));
    let model =
        BertForSequenceClassification::from_pretrained(&model_path, 2, Device::Cpu).unwrap();
    let inputs = Encoded::new(
        reference["input_ids"].shallow_clone(),
        reference["attention_mask"].shallow_clone(),
        reference["token_type_ids"].shallow_clone(),
    );
    let ours = model.attentions(&inputs).unwrap();
    assert_eq!(ours.len(), 6, "one tensor per layer");

    let mask = inputs.attention_mask.to_kind(Kind::Float);
    // Rows of padding queries carry no meaning; keys that are padding must get exactly 0.
    let real_queries = mask.unsqueeze(1).unsqueeze(-1);
    let padding_keys = (mask.ones_like() - &mask).unsqueeze(1).unsqueeze(1);
    let mut worst = 0.0f64;
    for (i, probs) in ours.iter().enumerate() {
        let expected = &reference[&format!("attentions.{i}")];
        assert_eq!(probs.size(), expected.size(), "layer {i}");
        assert_eq!(probs.size()[1], 12, "MiniLM has 12 heads");
        worst = worst.max(max_abs_diff(
            &(probs * &real_queries),
            &(expected * &real_queries),
        ));
        let leaked = (probs * &padding_keys).abs().max().double_value(&[]);
        assert_eq!(leaked, 0.0, "layer {i} attends to padding");
        let row_sums = probs.sum_dim_intlist(-1, false, Kind::Double);
        let off = (row_sums - 1.0).abs().max().double_value(&[]);
        assert!(off < 1e-5, "layer {i}: rows sum to 1 ± {off}");
    }
    println!("attention probabilities: max |Δ| {worst:.2e} over 6 layers");
    assert!(worst <= ATTENTION_TOLERANCE, "attentions differ by {worst}");

    // Asking for attentions changes nothing else: the eager path's states are the fused ones.
    let ids = &inputs.input_ids;
    let types = &inputs.token_type_ids;
    let (fused, eager) = tch::no_grad(|| {
        let fused = model
            .bert
            .forward(ids, &inputs.attention_mask, types, false);
        let eager = model
            .bert
            .forward_with_attentions(ids, &inputs.attention_mask, types, false);
        (fused, eager)
    });
    assert!(fused.attentions.is_none());
    let keep = mask.unsqueeze(-1);
    let states = max_abs_diff(
        &(&eager.last_hidden_state * &keep),
        &(&fused.last_hidden_state * &keep),
    );
    let python = max_abs_diff(
        &(&eager.last_hidden_state * &keep),
        &(&reference["last_hidden_state"] * &keep),
    );
    println!("last_hidden_state: eager vs fused {states:.2e}, eager vs transformers {python:.2e}");
    assert!(states <= TOLERANCE && python <= TOLERANCE);
}

#[test]
fn random_bert_of_another_shape_matches_transformers() {
    let dir = tmp();
    let config = r#"{"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "intermediate_size": 256, "num_labels": 3, "vocab_size": 30522}"#;
    let (tokenizer, out) = (path_str(&minilm()), path_str(dir.path()));
    let options = [
        "random",
        "--config",
        config,
        "--tokenizer",
        &tokenizer,
        "--out",
        &out,
    ];
    python("reference.py", &argv(&options, &sentences()));
    check_outputs(dir.path());
}

#[test]
fn bert_base_has_the_tutorials_201_parameters() {
    let model = BertForSequenceClassification::new(&BertConfig::bert_base(), Device::Cpu).unwrap();
    let listing = model.parameter_listing();
    assert_eq!(listing.len(), 201);
    let named = &listing.named;
    let expect = [
        (
            0,
            "bert.embeddings.word_embeddings.weight",
            vec![30522, 768],
        ),
        (
            1,
            "bert.embeddings.position_embeddings.weight",
            vec![512, 768],
        ),
        (
            2,
            "bert.embeddings.token_type_embeddings.weight",
            vec![2, 768],
        ),
        (3, "bert.embeddings.LayerNorm.weight", vec![768]),
        (4, "bert.embeddings.LayerNorm.bias", vec![768]),
        (
            5,
            "bert.encoder.layer.0.attention.self.query.weight",
            vec![768, 768],
        ),
        (
            6,
            "bert.encoder.layer.0.attention.self.query.bias",
            vec![768],
        ),
        (
            11,
            "bert.encoder.layer.0.attention.output.dense.weight",
            vec![768, 768],
        ),
        (
            13,
            "bert.encoder.layer.0.attention.output.LayerNorm.weight",
            vec![768],
        ),
        (
            15,
            "bert.encoder.layer.0.intermediate.dense.weight",
            vec![3072, 768],
        ),
        (
            16,
            "bert.encoder.layer.0.intermediate.dense.bias",
            vec![3072],
        ),
        (
            17,
            "bert.encoder.layer.0.output.dense.weight",
            vec![768, 3072],
        ),
        (20, "bert.encoder.layer.0.output.LayerNorm.bias", vec![768]),
        (197, "bert.pooler.dense.weight", vec![768, 768]),
        (198, "bert.pooler.dense.bias", vec![768]),
        (199, "classifier.weight", vec![2, 768]),
        (200, "classifier.bias", vec![2]),
    ];
    for (i, name, shape) in expect {
        assert_eq!(
            (named[i].0.as_str(), &named[i].1),
            (name, &shape),
            "parameter {i}"
        );
    }
    let text = listing.to_string();
    assert!(text.contains("201 different named parameters"), "{text}");
    assert!(text.contains("==== Embedding Layer ====") && text.contains("==== Output Layer ===="));
    // bert-base-uncased with a 2-label head: 109,483,778 values.
    assert_eq!(listing.total(), 109_483_778);
}

/// The embedded MiniLM with a fresh 2-label head, and its tokenizer.
fn minilm_classifier() -> (BertForSequenceClassification, BertTokenizer) {
    let model =
        BertForSequenceClassification::from_pretrained(minilm().to_str().unwrap(), 2, Device::Cpu)
            .unwrap();
    (model, BertTokenizer::from_dir(minilm()).unwrap())
}

/// The encoder skips padding and, when classifying, computes only `[CLS]` in its last layer
/// (`model/packing.rs`). Neither may change a result: logits and gradients of a batch padded
/// to 64 equal those of the same batch padded to its longest sentence, of a batch without
/// padding, and of `forward`'s full pooler output.
#[test]
fn padding_and_the_cls_shortcut_change_no_logit_or_gradient() {
    let (model, tokenizer) = minilm_classifier();
    let sentences = sentences();
    let fixed = tokenizer
        .encode_batch(&sentences, 64, Padding::Fixed)
        .unwrap();
    let longest = tokenizer
        .encode_batch(&sentences, 64, Padding::Longest)
        .unwrap();
    assert_eq!(fixed.input_ids.size()[1], 64);
    assert!(longest.input_ids.size()[1] < 64);

    // Logits and the gradient of every parameter, dropout off.
    let run = |inputs: &Encoded| {
        for p in model.vs.trainable_variables() {
            p.shallow_clone().zero_grad();
        }
        let logits = model.logits(inputs, false);
        logits.sum(Kind::Float).backward();
        let grads: Vec<_> = model
            .vs
            .trainable_variables()
            .iter()
            .map(|p| p.grad().copy())
            .collect();
        (logits.detach(), grads)
    };
    let (logits_fixed, grads_fixed) = run(&fixed);
    let (logits_longest, grads_longest) = run(&longest);
    let logit_diff = max_abs_diff(&logits_fixed, &logits_longest);
    let grad_diff = grads_fixed
        .iter()
        .zip(&grads_longest)
        .map(|(a, b)| max_abs_diff(a, b))
        .fold(
            0.0,
            |worst, d| if d.is_nan() || d > worst { d } else { worst },
        );
    println!("fixed-64 vs longest: logits {logit_diff:.2e}, gradients {grad_diff:.2e}");
    assert!(logit_diff <= 1e-5, "logits differ by {logit_diff}");
    assert!(grad_diff <= 1e-5, "gradients differ by {grad_diff}"); // false for NaN

    // The longest sentence alone has no padding at all: the path without gather and scatter.
    let last = sentences.len() - 1;
    let alone = tokenizer
        .encode_batch(&sentences[last..], 64, Padding::Longest)
        .unwrap();
    let logits_alone = tch::no_grad(|| model.logits(&alone, false));
    let alone_diff = max_abs_diff(&logits_alone, &logits_longest.narrow(0, last as i64, 1));
    assert!(
        alone_diff <= 1e-5,
        "unpadded sentence differs by {alone_diff}"
    );

    // The classifier's shortcut reads the same pooled state as the full encoder output.
    let full = tch::no_grad(|| {
        model.bert.forward(
            &longest.input_ids,
            &longest.attention_mask,
            &longest.token_type_ids,
            false,
        )
    });
    let pooled = tch::no_grad(|| {
        model.bert.pooled(
            &longest.input_ids,
            &longest.attention_mask,
            &longest.token_type_ids,
            false,
        )
    });
    let pooled_diff = max_abs_diff(full.pooler_output.as_ref().unwrap(), &pooled);
    assert!(
        pooled_diff <= 1e-5,
        "pooled outputs differ by {pooled_diff}"
    );
}

/// Attention maps keep transformers' `[batch, heads, seq, seq]` shape when the batch carries
/// columns of padding only (the encoder cuts them off inside), and are unchanged on real tokens.
#[test]
fn attentions_of_a_fixed_64_batch_keep_their_shape() {
    let (model, tokenizer) = minilm_classifier();
    let sentences = &sentences()[..2];
    let fixed = tokenizer
        .encode_batch(sentences, 64, Padding::Fixed)
        .unwrap();
    let longest = tokenizer
        .encode_batch(sentences, 64, Padding::Longest)
        .unwrap();
    let width = longest.input_ids.size()[1];
    let (wide, narrow) = (
        model.attentions(&fixed).unwrap(),
        model.attentions(&longest).unwrap(),
    );
    for (w, n) in wide.iter().zip(&narrow) {
        assert_eq!(w.size(), [2, 12, 64, 64]);
        let cut = w.narrow(2, 0, width).narrow(3, 0, width);
        assert!(max_abs_diff(&cut, n) <= 1e-6);
        assert_eq!(
            w.narrow(3, width, 64 - width).abs().max().double_value(&[]),
            0.0
        );
    }
}
