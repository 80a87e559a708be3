//! The fast training step: operator counts of the optimizer, bf16 autocast on the CPU, the
//! length-grouped sampler and the bench report.

mod common;

use bert_finetune::bench::{median, spread, Report, Run};
use bert_finetune::data::{length_grouped_order, padded_share, Sampler};
use bert_finetune::dataset;
use bert_finetune::ffi;
use bert_finetune::model::{BertConfig, BertForSequenceClassification};
use bert_finetune::optim::{AdamWConfig, FusedAdamW, LinearSchedule};
use bert_finetune::precision::{Autocast, Precision};
use bert_finetune::tokenize::{BertTokenizer, Padding};
use bert_finetune::train::training_step;
use common::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tch::nn::OptimizerConfig;
use tch::{Device, Kind, Tensor};

fn config(layers: i64) -> BertConfig {
    let mut c = BertConfig::new(30522, 64, layers, 2, 128);
    c.set_num_labels(2);
    c
}

fn cola(n: usize, padding: Padding) -> bert_finetune::data::EncodedSet {
    let tokenizer = BertTokenizer::from_dir(minilm()).unwrap();
    let (train, _) = dataset::train_validation(
        &tokenizer,
        bert_finetune::settings::cola_dir(),
        64,
        padding,
        42,
        Some(n),
    )
    .unwrap();
    train
}

/// One backward pass on a fixed batch, so every parameter has a gradient.
fn backward(model: &BertForSequenceClassification) {
    let ids =
        Tensor::from_slice(&[101i64, 2023, 2003, 1037, 6251, 102, 101, 2009, 102, 0]).view([2, 5]);
    let mask = ids.ne(0).to_kind(Kind::Int64);
    let labels = Tensor::from_slice(&[0i64, 1]);
    let loss = model
        .forward(&ids, &mask, &ids.zeros_like(), true)
        .cross_entropy_for_logits(&labels);
    ffi::zero_grad(&model.vs.trainable_variables()).unwrap();
    loss.backward();
}

#[test]
fn optimizer_step_dispatches_a_fixed_number_of_operators() {
    let mut counts = Vec::new();
    let mut tch_counts = Vec::new();
    for layers in [1, 4] {
        tch::manual_seed(1);
        let model = BertForSequenceClassification::new(&config(layers), Device::Cpu).unwrap();
        let mut opt = FusedAdamW::new(&model.vs, AdamWConfig::default()).unwrap();
        backward(&model);
        let (norm, ops) = ffi::count_ops(|| -> anyhow::Result<Tensor> {
            let norm = opt.clip_grad_norm()?;
            opt.step()?;
            Ok(norm)
        })
        .unwrap();
        assert!(norm.unwrap().double_value(&[]) > 0.0);
        println!(
            "{layers} layer(s), {} tensors: fused step dispatches {} operators ({} in all)",
            opt.num_tensors(),
            ops.top_level,
            ops.all
        );
        counts.push((opt.num_tensors(), ops));

        // For contrast: tch's libtorch AdamW loops over tensors.
        let mut tch_opt = tch::nn::AdamW::default().build(&model.vs, 1e-3).unwrap();
        backward(&model);
        let ((), tch_ops) = ffi::count_ops(|| tch_opt.step()).unwrap();
        println!(
            "{layers} layer(s): tch::nn::AdamW dispatches {} operators",
            tch_ops.top_level
        );
        tch_counts.push(tch_ops.top_level);
    }
    let (small, large) = (counts[0], counts[1]);
    assert!(
        large.0 > small.0 + 40,
        "the larger model has many more tensors"
    );
    assert_eq!(
        small.1.top_level, large.1.top_level,
        "operators dispatched per step must not depend on the number of tensors"
    );
    assert!(small.1.top_level <= 16, "a handful of operators: {small:?}");
    assert!(
        tch_counts[1] > tch_counts[0] + 40,
        "the counter sees per-tensor loops: {tch_counts:?}"
    );
}

#[test]
fn bf16_autocast_on_the_cpu_tracks_fp32() {
    // The shim's autocast switch: matmuls inside the region are bf16, outside fp32 again.
    let a = Tensor::randn([4, 4], (Kind::Float, Device::Cpu));
    {
        let _region = Autocast::enter(Device::Cpu, Kind::BFloat16).unwrap();
        assert_eq!(a.matmul(&a).kind(), Kind::BFloat16);
    }
    assert_eq!(a.matmul(&a).kind(), Kind::Float);
    assert!(!ffi::autocast_state(Device::Cpu).unwrap().0);

    // A few training steps in each precision from the same start on the same batches: the
    // loss is computed in fp32 either way and must stay within 0.03 of fp32's (bf16 keeps about
    // three significant digits; the losses here are ~0.7).
    const TOLERANCE: f64 = 0.03;
    let set = cola(96, Padding::Longest);
    let batches = set.batches(16, Sampler::Sequential, Device::Cpu);
    let run = |precision: Precision| -> Vec<f64> {
        tch::manual_seed(3);
        let model = BertForSequenceClassification::new(&config(2), Device::Cpu).unwrap();
        let cfg = AdamWConfig {
            lr: 1e-3,
            ..AdamWConfig::default()
        };
        let mut opt = FusedAdamW::new(&model.vs, cfg).unwrap();
        let mut schedule = LinearSchedule::new(&mut opt, 0, batches.len());
        tch::manual_seed(4);
        batches
            .iter()
            .map(|b| {
                let loss = training_step(&model, b, &mut opt, &mut schedule, precision).unwrap();
                assert_eq!(loss.kind(), Kind::Float, "the loss is fp32");
                for (_, p) in model.named_parameters() {
                    assert_eq!(p.kind(), Kind::Float, "master weights stay fp32");
                }
                loss.double_value(&[])
            })
            .collect()
    };
    let fp32 = run(Precision::Fp32);
    let bf16 = run(Precision::Bf16);
    let worst = fp32
        .iter()
        .zip(&bf16)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    println!("fp32 losses {fp32:?}\nbf16 losses {bf16:?}\nlargest difference {worst:.2e}");
    assert_ne!(fp32, bf16, "bf16 must actually change the arithmetic");
    assert!(worst <= TOLERANCE, "bf16 drifted {worst} from fp32");
    assert!(
        !ffi::autocast_state(Device::Cpu).unwrap().0,
        "autocast is off again"
    );
}

#[test]
fn precision_names_parse_and_cpu_defaults_to_fp32() {
    for p in Precision::ALL {
        assert_eq!(p.name().parse::<Precision>().unwrap(), p);
    }
    assert!("fp16".parse::<Precision>().is_err());
    assert_eq!(Precision::default_for(Device::Cpu), Precision::Fp32);
    assert!(Precision::Fp32.autocast(Device::Cpu).unwrap().is_none());
    Precision::Tf32.apply(Device::Cpu).unwrap();
    Precision::Fp32.apply(Device::Cpu).unwrap();
}

#[test]
fn length_grouped_sampler_is_hugging_faces() {
    let mut rng = StdRng::seed_from_u64(0);
    let lengths: Vec<usize> = (0..1000).map(|i| 3 + (i * 7919) % 45).collect();
    let bs = 8;
    let order = length_grouped_order(&lengths, bs, &mut StdRng::seed_from_u64(5));
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..1000).collect::<Vec<_>>(), "a permutation");
    // Megabatches of min(1000 / 32, 50) · 8 = 31 · 8 = 248, sorted longest first, except the
    // head of the first, which is the longest row of all.
    let mega = 31 * bs;
    let longest = *lengths.iter().max().unwrap();
    assert_eq!(lengths[order[0]], longest);
    for (m, chunk) in order.chunks(mega).enumerate() {
        let body = if m == 0 { &chunk[1..] } else { chunk };
        for w in body.windows(2) {
            assert!(lengths[w[0]] >= lengths[w[1]], "megabatch {m} is sorted");
        }
    }
    assert_eq!(
        order,
        length_grouped_order(&lengths, bs, &mut StdRng::seed_from_u64(5)),
        "seeded"
    );
    assert_ne!(
        order,
        length_grouped_order(&lengths, bs, &mut rng),
        "another seed, another order"
    );

    // On CoLA the bucketed batches carry far less padding than shuffled ones.
    let set = cola(2000, Padding::Bucket);
    assert!(matches!(
        set.training_sampler(42),
        Sampler::ByLength { seed: 42 }
    ));
    let bucket = padded_share(&set.batches(32, Sampler::ByLength { seed: 42 }, Device::Cpu));
    let random = padded_share(&set.batches(32, Sampler::Random { seed: 42 }, Device::Cpu));
    println!("padded share: bucket {bucket:.3}, random {random:.3}");
    assert!(bucket < random / 3.0, "bucket {bucket} vs random {random}");
}

#[test]
fn bench_report_has_the_issue_schema() {
    assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
    assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
    assert_eq!(median(&[]), None);
    assert_eq!(spread(10, 5), vec![0, 2, 4, 6, 8]);
    assert_eq!(spread(3, 5), vec![0, 1, 2]);
    let run = |side: &str, padding: &str, v: f64| Run {
        side: side.into(),
        padding: padding.into(),
        sentences_per_second: v,
        padded_share: 0.5,
    };
    let runs = vec![
        run("rust", "longest", 100.0),
        run("rust", "longest", 120.0),
        run("rust", "longest", 110.0),
        run("pytorch", "longest", 80.0),
        run("pytorch-fused", "longest", 100.0),
        run("rust", "bucket", 165.0),
    ];
    let report = Report::new(&runs, serde_json::json!({}));
    let json: serde_json::Value = serde_json::from_str(&report.to_json().unwrap()).unwrap();
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    for row in rows {
        for key in ["padding", "side", "sentences_per_second", "padded_share"] {
            assert!(!row[key].is_null(), "{key} in {row}");
        }
    }
    assert_eq!(json["ratios"]["longest"]["vs_pytorch"], 110.0 / 80.0);
    assert_eq!(json["ratios"]["longest"]["vs_pytorch_fused"], 1.1);
    assert_eq!(json["rust_bucket_vs_longest"], 1.5);
    let text = report.to_string();
    assert!(text.contains("longest") && text.contains("1.38"), "{text}");
    let chart = report.chart().unwrap();
    assert!(chart.png.starts_with(b"\x89PNG"));
}
