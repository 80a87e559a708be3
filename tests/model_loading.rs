//! Loading checkpoints: what a user gets for good and for broken folders.

mod common;

use bert_finetune::data::tokenizer::{BertTokenizer, Padding};
use bert_finetune::model::BertForSequenceClassification;
use common::*;
use tch::Device;

#[test]
fn minilm_loads_with_a_new_head_reported_missing() {
    let model =
        BertForSequenceClassification::from_pretrained(minilm().to_str().unwrap(), 2, Device::Cpu)
            .unwrap();
    let report = model.load_report.as_ref().unwrap();
    assert_eq!(report.missing, vec!["classifier.bias", "classifier.weight"]);
    assert!(report.unexpected.is_empty(), "{report}");
    assert!(report.to_string().contains("newly initialized"));
    assert_eq!(model.config.hidden_size, 384);
    assert_eq!(model.parameter_listing().len(), 5 + 6 * 16 + 4);
}

#[test]
fn a_folder_without_weights_is_an_error() {
    let dir = copy_minilm();
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    let err = load_err(dir.path());
    assert!(
        err.contains("no model weights") && err.contains("model.safetensors"),
        "{err}"
    );
}

#[test]
fn a_config_that_disagrees_with_the_weights_names_the_tensor() {
    let dir = copy_minilm();
    let path = dir.path().join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["intermediate_size"] = 1024.into();
    std::fs::write(&path, config.to_string()).unwrap();
    let err = load_err(dir.path());
    assert!(err.contains("intermediate.dense.weight"), "{err}");
    assert!(
        err.contains("[1536, 384]") && err.contains("[1024, 384]"),
        "{err}"
    );
}

#[test]
fn a_truncated_safetensors_file_is_an_error() {
    let dir = copy_minilm();
    let path = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = load_err(dir.path());
    assert!(
        err.contains("model.safetensors") && err.contains("truncated or corrupt"),
        "{err}"
    );
}

#[test]
fn an_unreadable_tokenizer_json_is_an_error() {
    let dir = copy_minilm();
    std::fs::write(dir.path().join("tokenizer.json"), "{ not json").unwrap();
    let err = match BertTokenizer::from_dir(dir.path()) {
        Ok(_) => panic!("garbage tokenizer.json loaded"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("tokenizer.json"), "{err}");
}

#[test]
fn vocab_txt_alone_tokenizes_like_tokenizer_json() {
    let dir = copy_minilm();
    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    let from_vocab = BertTokenizer::from_dir(dir.path()).unwrap();
    let from_json = BertTokenizer::from_dir(minilm()).unwrap();
    for s in [
        "Our friends won't buy this analysis.",
        "Café résumé, NAÏVE!",
    ] {
        assert_eq!(
            from_vocab.encode(s).unwrap(),
            from_json.encode(s).unwrap(),
            "{s}"
        );
    }
}

#[test]
fn truncation_keeps_sep_last_and_empty_is_cls_sep() {
    let tokenizer = BertTokenizer::from_dir(minilm()).unwrap();
    let long = "the cat sat on the mat ".repeat(30);
    let batch = tokenizer
        .encode_batch(&[long, String::new()], 64, Padding::Fixed)
        .unwrap();
    assert_eq!(batch.input_ids.size(), vec![2, 64]);
    assert_eq!(batch.input_ids.int64_value(&[0, 0]), 101);
    assert_eq!(batch.input_ids.int64_value(&[0, 63]), 102);
    assert_eq!(batch.attention_mask.int64_value(&[0, 63]), 1);
    let empty: Vec<i64> = Vec::try_from(batch.input_ids.get(1)).unwrap();
    assert_eq!(&empty[..3], &[101, 102, 0]);
    let mask: Vec<i64> = Vec::try_from(batch.attention_mask.get(1)).unwrap();
    assert_eq!(mask.iter().sum::<i64>(), 2);

    let table = tokenizer
        .inspect("Our friends won't buy this analysis, let alone the next one we propose.")
        .unwrap();
    assert_eq!(table.cell(1, "token"), Some("our"));
    assert_eq!(table.cell(1, "id"), Some("2256"));
    assert_eq!(table.cell(4, "id"), Some("1005"));
    let longest = tokenizer
        .encode_batch(&["a b c", "a"], 64, Padding::Longest)
        .unwrap();
    assert_eq!(longest.seq_len(), 5);
}

/// `model::shapes` (what loading compares with a file's header before allocating) lists
/// exactly the var store's parameters, in order, with their shapes, and counts them right.
#[test]
fn the_shapes_a_config_implies_are_the_models_parameters() {
    use bert_finetune::model::{shapes, BertConfig};
    let mut config = BertConfig::new(50, 8, 3, 2, 20);
    config.max_position_embeddings = 16;
    config.type_vocab_size = 3;
    config.set_num_labels(5);
    let model = BertForSequenceClassification::new(&config, Device::Cpu).unwrap();
    let ours: Vec<(String, Vec<i64>)> = model
        .named_parameters()
        .into_iter()
        .map(|(n, t)| (n, t.size()))
        .collect();
    let implied: Vec<(String, Vec<i64>)> = shapes::parameters(&config, 3)
        .into_iter()
        .map(|p| (p.name.clone(), p.shape()))
        .collect();
    assert_eq!(implied, ours);
    let numel: i64 = ours.iter().map(|(_, s)| s.iter().product::<i64>()).sum();
    assert_eq!(shapes::footprint(&config).parameters, numel as u128);
}

/// Construction draws its initial weights with fallible calls; they are the very numbers
/// tch's `Init::Randn` draws for the same seed, so seeded runs (CoLA seed 42) are unchanged.
#[test]
fn fallible_initialisation_draws_the_same_weights_as_tchs_init() {
    use bert_finetune::model::layers::Linear;
    use tch::nn::{Init, VarStore};
    let ours = VarStore::new(Device::Cpu);
    let theirs = VarStore::new(Device::Cpu);
    tch::manual_seed(42);
    let linear = Linear::new(ours.root() / "dense", 64, 48, 0.02).unwrap();
    tch::manual_seed(42);
    let weight = theirs.root().var(
        "weight",
        &[48, 64],
        Init::Randn {
            mean: 0.,
            stdev: 0.02,
        },
    );
    assert!(linear.weight.equal(&weight));
    assert_eq!(
        linear
            .bias
            .as_ref()
            .unwrap()
            .abs()
            .sum(tch::Kind::Float)
            .double_value(&[]),
        0.0
    );
}

/// A fresh ModernBERT is drawn as transformers' `_init_weights` draws one: truncated
/// normals at ±2 deviations, the deviation by role.
#[test]
fn new_modernbert_weights_are_drawn_as_its_init_draws_them() {
    use bert_finetune::model::{BertConfig, Family};
    use tch::Tensor;
    let mut c = BertConfig::new(2000, 256, 4, 4, 512);
    c.set_family(Family::ModernBert);
    c.set_num_labels(8);
    tch::manual_seed(0);
    let model = BertForSequenceClassification::new(&c, tch::Device::Cpu).unwrap();
    let params: std::collections::HashMap<String, Tensor> =
        model.named_parameters().into_iter().collect();
    for (name, std) in [
        ("model.embeddings.tok_embeddings.weight", 0.02),
        ("model.layers.1.attn.Wqkv.weight", 0.02),
        ("model.layers.1.attn.Wo.weight", 0.02 / 8f64.sqrt()),
        ("model.layers.2.mlp.Wo.weight", 0.02 / 8f64.sqrt()),
        ("head.dense.weight", 0.02 / 8f64.sqrt()),
        ("classifier.weight", 1.0 / 16.0),
    ] {
        let w = &params[name];
        let largest = w.abs().max().double_value(&[]);
        assert!(
            largest <= 2.0 * std + 1e-9,
            "{name}: {largest} past 2 × {std}"
        );
        assert!(
            largest > 1.9 * std,
            "{name}: {largest}, not truncated at 2 × {std}"
        );
        // A normal truncated at ±2σ has a deviation of 0.880σ.
        let got = w.std(true).double_value(&[]);
        assert!(
            (got / (0.880 * std) - 1.0).abs() < 0.1,
            "{name}: deviation {got}, want {}",
            0.880 * std
        );
    }
    assert!(!params.contains_key("model.layers.1.attn.Wqkv.bias"));
    assert_eq!(params["classifier.bias"].abs().max().double_value(&[]), 0.0);
}
