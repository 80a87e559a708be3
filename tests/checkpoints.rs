//! Checkpoints as they are found on the hub, built by transformers and loaded here: the
//! pre-training heads, TF-era LayerNorm names without the tied decoder, fp16 and bf16 weights,
//! a fine-tuned head with its own labels; and what is refused, with the field named.
//!
//! Tolerance: max |Δ| ≤ 1e-4 on hidden states, pooled output and logits for every variant,
//! fp16 and bf16 included: both sides widen the same stored half-precision values to fp32
//! and then compute in fp32, so storage precision adds no difference between them.

mod common;

use std::path::Path;
use std::sync::OnceLock;

use bert_finetune::model::BertForSequenceClassification;
use bert_finetune::model::{predict, pretrained};
use common::*;
use tch::{Device, Kind, Tensor};

const TOLERANCE: f64 = 1e-4;

/// The variants, built once by `tests/python/reference.py variants`.
fn variants() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tmp();
        python(
            "reference.py",
            &[
                "variants",
                "--tokenizer",
                &path_str(&minilm()),
                "--out",
                &path_str(dir.path()),
                "Our friends won't buy this analysis, let alone the next one we propose.",
                "They investigated.",
                "The more we study verbs, the crazier they get.",
            ],
        );
        dir
    })
    .path()
}

/// Loads a variant, gives it Python's head where it has none, compares every output.
fn check(name: &str, num_labels: Option<usize>) -> BertForSequenceClassification {
    let dir = variants().join(name);
    let reference = read_tensors(&dir.join("reference.safetensors"));
    let model =
        BertForSequenceClassification::from_pretrained(&path_str(&dir), num_labels, Device::Cpu)
            .unwrap();
    let report = model.load_report.clone().unwrap();
    if report.missing.iter().any(|n| n.starts_with("classifier.")) {
        let vars = model.vs.variables();
        tch::no_grad(|| {
            for n in ["classifier.weight", "classifier.bias"] {
                vars[n].shallow_clone().copy_(&reference[n]);
            }
        });
    }
    let ids = &reference["input_ids"];
    let mask = &reference["attention_mask"];
    let types = ids.zeros_like();
    let out = tch::no_grad(|| model.bert.forward(ids, mask, &types, false));
    let logits = tch::no_grad(|| model.forward(ids, mask, &types, false));
    let keep = mask.unsqueeze(-1).to_kind(Kind::Float);
    let diffs = [
        max_abs_diff(
            &(&out.last_hidden_state * &keep),
            &(&reference["last_hidden_state"] * &keep),
        ),
        max_abs_diff(
            out.pooler_output.as_ref().unwrap(),
            &reference["pooler_output"],
        ),
        max_abs_diff(&logits, &reference["logits"]),
    ];
    println!(
        "{name}: max |Δ| hidden {:.2e}, pooled {:.2e}, logits {:.2e}",
        diffs[0], diffs[1], diffs[2]
    );
    assert!(diffs.iter().all(|d| *d <= TOLERANCE), "{name}: {diffs:?}");
    model
}

fn is_fp32(model: &BertForSequenceClassification) -> bool {
    model
        .named_parameters()
        .iter()
        .all(|(_, t): &(String, Tensor)| t.kind() == Kind::Float)
}

#[test]
fn a_pretraining_checkpoint_loads_with_its_heads_reported_unused() {
    let model = check("pretraining", Some(2));
    let report = model.load_report.as_ref().unwrap();
    assert_eq!(report.missing, ["classifier.bias", "classifier.weight"]);
    assert!(report
        .unexpected
        .contains(&"cls.seq_relationship.weight".to_string()));
    assert!(report
        .unexpected
        .contains(&"cls.predictions.transform.dense.weight".to_string()));
    let text = report.to_string();
    assert!(text.contains("were not used") && text.contains("newly initialized"));
}

#[test]
fn legacy_layernorm_names_and_an_absent_tied_decoder_load() {
    let model = check("legacy", Some(2));
    let report = model.load_report.as_ref().unwrap();
    // gamma/beta became weight/bias: nothing of the encoder is missing.
    assert_eq!(report.missing, ["classifier.bias", "classifier.weight"]);
    assert!(report.unexpected.iter().all(|n| n.starts_with("cls.")));
}

#[test]
fn fp16_and_bf16_weights_are_widened_to_fp32() {
    for name in ["fp16", "bf16"] {
        let model = check(name, Some(2));
        assert!(is_fp32(&model), "{name}");
    }
}

#[test]
fn a_head_of_three_named_classes_is_kept_for_prediction_and_replaced_for_cola() {
    // As saved by transformers 5: id2label with three names, no num_labels field.
    let model = check("three_labels", None);
    assert_eq!(model.config.num_labels(), 3);
    assert!(model.load_report.as_ref().unwrap().is_clean());
    assert_eq!(model.config.label_name(2), "positive");
    let dir = variants().join("three_labels");
    let tokenizer = pretrained::load_tokenizer(&dir).unwrap();
    let loaded = pretrained::load_classifier(&dir, Device::Cpu).unwrap();
    let table = predict::classify_sentences(&loaded, &tokenizer, &["They investigated."])
        .unwrap()
        .to_string();
    assert!(
        ["negative", "neutral", "positive"]
            .iter()
            .any(|l| table.contains(l)),
        "{table}"
    );

    // Fine-tuning on CoLA asks for two classes: a fresh head, reported as transformers does.
    let cola = pretrained::load_model(&dir, Device::Cpu).unwrap();
    let report = cola.load_report.as_ref().unwrap();
    assert_eq!(report.mismatched.len(), 2, "{report}");
    assert!(
        report.to_string().contains("shapes did not match")
            && report.mismatched[1].contains("classifier.weight: [3, 48]"),
        "{report}"
    );
    assert_eq!(cola.config.label_name(1), "acceptable");
}

fn refused(config_edit: impl Fn(&mut serde_json::Value)) -> String {
    let dir = tmp();
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(variants().join("pretraining").join(f), dir.path().join(f)).unwrap();
    }
    let path = dir.path().join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config_edit(&mut config);
    std::fs::write(&path, config.to_string()).unwrap();
    match BertForSequenceClassification::from_pretrained(&path_str(dir.path()), 2, Device::Cpu) {
        Ok(_) => panic!("{config} was accepted"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn other_architectures_and_unsupported_options_are_refused_by_field() {
    let err = refused(|c| c["model_type"] = "deberta-v2".into());
    assert!(
        err.contains("model_type") && err.contains("deberta-v2") && err.contains("config.json"),
        "{err}"
    );
    // A BERT's weights under a DistilBERT config: refused before allocating, naming the
    // field as DistilBERT's config names it and the tensor the file lacks.
    let err = refused(|c| {
        c["model_type"] = "distilbert".into();
        c.as_object_mut().unwrap().remove("architectures");
        c["n_layers"] = 2.into();
    });
    assert!(
        err.contains("n_layers is 2")
            && err.contains("distilbert.transformer.layer.0.attention.q_lin.weight"),
        "{err}"
    );
    let err = refused(|c| {
        c["model_type"] = "distilbert".into();
        c.as_object_mut().unwrap().remove("architectures");
        c["sinusoidal_pos_embds"] = true.into();
    });
    assert!(err.contains("sinusoidal_pos_embds"), "{err}");
    // DeBERTa options this crate does not implement, by field.
    for (field, value, said) in [
        (
            "conv_kernel_size",
            serde_json::json!(3),
            "conv_kernel_size is 3",
        ),
        (
            "share_att_key",
            serde_json::json!(false),
            "share_att_key is false",
        ),
        (
            "pos_att_type",
            serde_json::json!(["p2p"]),
            "pos_att_type lists \"p2p\"",
        ),
        (
            "norm_rel_ebd",
            serde_json::json!("batch_norm"),
            "norm_rel_ebd",
        ),
    ] {
        let err = refused(|c| {
            c["model_type"] = "deberta-v2".into();
            c.as_object_mut().unwrap().remove("architectures");
            c["relative_attention"] = true.into();
            c["pos_att_type"] = serde_json::json!(["p2c", "c2p"]);
            c["share_att_key"] = true.into();
            c[field] = value.clone();
        });
        assert!(err.contains(said) && err.contains("config.json"), "{err}");
    }
    let err = refused(|c| {
        c["model_type"] = "bert".into();
        c["architectures"] = serde_json::json!(["RobertaForMaskedLM"]);
    });
    assert!(
        err.contains("architectures") && err.contains("RobertaForMaskedLM"),
        "{err}"
    );
    let err = refused(|c| c["is_decoder"] = true.into());
    assert!(err.contains("is_decoder"), "{err}");
    let err = refused(|c| c["position_embedding_type"] = "relative_key".into());
    assert!(err.contains("position_embedding_type"), "{err}");
    let err = refused(|c| c["position_embedding_type"] = "rotary".into());
    assert!(
        err.contains("position_embedding_type") && err.contains("absolute, relative_key"),
        "{err}"
    );
    let err = refused(|c| c["hidden_act"] = "swish".into());
    assert!(
        err.contains("hidden_act") && err.contains("\"swish\"") && err.contains("gelu_new"),
        "{err}"
    );
}

#[test]
fn hidden_act_and_position_embedding_type_are_written_back_as_read() {
    use bert_finetune::model::{BertConfig, HiddenAct, PositionEmbeddingType};
    for (text, act) in [
        ("gelu", HiddenAct::Gelu),
        ("gelu_new", HiddenAct::GeluNew),
        ("gelu_pytorch_tanh", HiddenAct::GeluPytorchTanh),
        ("gelu_fast", HiddenAct::GeluFast),
        ("relu", HiddenAct::Relu),
    ] {
        let mut json: serde_json::Value =
            serde_json::from_str(&BertConfig::new(100, 8, 1, 2, 16).to_json("X").unwrap()).unwrap();
        json["hidden_act"] = text.into();
        let config: BertConfig = serde_json::from_value(json).unwrap();
        assert_eq!(config.hidden_act, act);
        assert_eq!(
            config.position_embedding_type,
            PositionEmbeddingType::Absolute
        );
        let written: serde_json::Value =
            serde_json::from_str(&config.to_json("BertForSequenceClassification").unwrap())
                .unwrap();
        assert_eq!(written["hidden_act"], text);
        assert_eq!(written["position_embedding_type"], "absolute");
    }
}

#[test]
fn a_distilbert_config_is_read_as_bert_fields_and_written_back_under_its_own_keys() {
    use bert_finetune::model::BertConfig;
    // distilbert-base-uncased's config.json, as the hub serves it.
    let text = r#"{"activation": "gelu", "architectures": ["DistilBertForMaskedLM"],
        "attention_dropout": 0.1, "dim": 768, "dropout": 0.1, "hidden_dim": 3072,
        "initializer_range": 0.02, "max_position_embeddings": 512, "model_type": "distilbert",
        "n_heads": 12, "n_layers": 6, "pad_token_id": 0, "qa_dropout": 0.1,
        "seq_classif_dropout": 0.2, "sinusoidal_pos_embds": false, "tie_weights_": true,
        "vocab_size": 30522}"#;
    let config = BertConfig::from_json(text).unwrap();
    config.validate().unwrap();
    assert_eq!(
        (
            config.hidden_size,
            config.num_hidden_layers,
            config.num_attention_heads,
            config.intermediate_size
        ),
        (768, 6, 12, 3072)
    );
    assert_eq!(config.sequence_dropouts(), (0.0, 0.2));
    assert_eq!(config.span_dropout(), 0.1);
    let written: serde_json::Value = serde_json::from_str(
        &config
            .to_json("DistilBertForSequenceClassification")
            .unwrap(),
    )
    .unwrap();
    let original: serde_json::Value = serde_json::from_str(text).unwrap();
    for (key, value) in original.as_object().unwrap() {
        if key != "architectures" {
            assert_eq!(&written[key], value, "{key}");
        }
    }
    for bert_only in [
        "hidden_size",
        "num_hidden_layers",
        "intermediate_size",
        "type_vocab_size",
        "layer_norm_eps",
        "position_embedding_type",
    ] {
        assert!(written.get(bert_only).is_none(), "{bert_only}: {written}");
    }
}

#[test]
fn a_modernbert_config_is_read_as_transformers_reads_it_and_written_back_under_its_own_keys() {
    use bert_finetune::model::modernbert_config::Pooling;
    use bert_finetune::model::{BertConfig, Family, HiddenAct};
    // answerdotai/ModernBERT-base's config.json as the hub serves it (written by transformers
    // 4.47: the older spelling of the layer kinds and RoPE bases, and two BERT keys its model
    // never read).
    let text = r#"{"architectures": ["ModernBertForMaskedLM"], "attention_bias": false,
        "attention_dropout": 0.0, "bos_token_id": 50281, "classifier_activation": "gelu",
        "classifier_bias": false, "classifier_dropout": 0.0, "classifier_pooling": "mean",
        "cls_token_id": 50281, "decoder_bias": true, "deterministic_flash_attn": false,
        "embedding_dropout": 0.0, "eos_token_id": 50282, "global_attn_every_n_layers": 3,
        "global_rope_theta": 160000.0, "gradient_checkpointing": false,
        "hidden_activation": "gelu", "hidden_size": 768, "initializer_cutoff_factor": 2.0,
        "initializer_range": 0.02, "intermediate_size": 1152, "layer_norm_eps": 1e-05,
        "local_attention": 128, "local_rope_theta": 10000.0, "max_position_embeddings": 8192,
        "mlp_bias": false, "mlp_dropout": 0.0, "model_type": "modernbert", "norm_bias": false,
        "norm_eps": 1e-05, "num_attention_heads": 12, "num_hidden_layers": 22,
        "pad_token_id": 50283, "position_embedding_type": "absolute", "sep_token_id": 50282,
        "sparse_pred_ignore_index": -100, "sparse_prediction": false, "torch_dtype": "float32",
        "transformers_version": "4.47.0.dev0", "vocab_size": 50368}"#;
    let config = BertConfig::from_json(text).unwrap();
    config.validate().unwrap();
    assert_eq!(config.family().unwrap(), Family::ModernBert);
    assert_eq!(config.hidden_act, HiddenAct::Gelu);
    assert_eq!(config.layer_norm_eps, 1e-5);
    assert!(!config.has_token_types() && !config.has_position_embeddings());
    let o = config.modernbert().unwrap();
    assert_eq!(o.sliding.len(), 22);
    assert_eq!(
        o.sliding.iter().map(|s| !s).collect::<Vec<_>>(),
        (0..22).map(|i| i % 3 == 0).collect::<Vec<_>>(),
        "every third layer attends to every token"
    );
    assert_eq!(
        (o.half_window, o.global_theta, o.local_theta),
        (64, 160_000.0, 10_000.0)
    );
    assert_eq!(o.pooling, Pooling::Mean);
    assert!(!(o.attention_bias || o.mlp_bias || o.norm_bias || o.classifier_bias));
    let written: serde_json::Value = serde_json::from_str(
        &config
            .to_json("ModernBertForSequenceClassification")
            .unwrap(),
    )
    .unwrap();
    let original: serde_json::Value = serde_json::from_str(text).unwrap();
    for (key, value) in original.as_object().unwrap() {
        // The two BERT keys ModernBERT never reads are not written back.
        if !["architectures", "layer_norm_eps", "position_embedding_type"].contains(&key.as_str()) {
            assert_eq!(&written[key], value, "{key}");
        }
    }
    for bert_only in ["hidden_act", "hidden_dropout_prob", "type_vocab_size"] {
        assert!(written.get(bert_only).is_none(), "{bert_only}: {written}");
    }
}

#[test]
fn modernbert_configs_that_contradict_the_weights_or_ask_for_what_is_not_implemented_are_refused() {
    let modern = |c: &mut serde_json::Value| {
        c["model_type"] = "modernbert".into();
        c.as_object_mut().unwrap().remove("architectures");
    };
    // A BERT's weights under a ModernBERT config: refused before allocating, naming the field
    // and the tensor the file lacks.
    let err = refused(modern);
    assert!(
        err.contains("num_hidden_layers") && err.contains("model.layers.0.attn.Wqkv.weight"),
        "{err}"
    );
    for (field, value, said) in [
        (
            "rope_parameters",
            serde_json::json!({"full_attention": {"rope_type": "yarn", "rope_theta": 1e4}}),
            "rope_parameters.full_attention.rope_type",
        ),
        (
            "classifier_pooling",
            serde_json::json!("max"),
            "classifier_pooling",
        ),
        (
            "layer_types",
            serde_json::json!(["full_attention"]),
            "layer_types lists 1 layers",
        ),
        (
            "classifier_activation",
            serde_json::json!("swish"),
            "classifier_activation",
        ),
    ] {
        let err = refused(|c| {
            modern(c);
            c[field] = value.clone();
        });
        assert!(err.contains(said) && err.contains("config.json"), "{err}");
    }
}
