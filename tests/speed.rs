//! The fast training step: operator counts of the optimizer, bf16 autocast on the CPU, the
//! length-grouped sampler and the bench report.

mod common;

use bert_finetune::data::split;
use bert_finetune::data::tokenizer::{BertTokenizer, Padding};
use bert_finetune::data::{length_grouped_order, padded_share, Sampler};
use bert_finetune::model::{BertConfig, BertForSequenceClassification};
use bert_finetune::optim::{AdamWConfig, FusedAdamW};
use bert_finetune::runtime::count_ops;
use bert_finetune::runtime::precision::{Autocast, Precision};
use bert_finetune::train::{TrainConfig, Trainer};
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
    let (train, _) = split::train_validation(
        &tokenizer,
        bert_finetune::runtime::settings::cola_dir(),
        64,
        padding,
        42,
        Some(n),
    )
    .unwrap();
    train
}

/// The loss of a fixed two-sentence batch (dropout on with `train`).
fn fixed_loss(model: &BertForSequenceClassification, train: bool) -> Tensor {
    let ids =
        Tensor::from_slice(&[101i64, 2023, 2003, 1037, 6251, 102, 101, 2009, 102, 0]).view([2, 5]);
    let mask = ids.ne(0).to_kind(Kind::Int64);
    let labels = Tensor::from_slice(&[0i64, 1]);
    model
        .forward(&ids, &mask, &ids.zeros_like(), train)
        .cross_entropy_for_logits(&labels)
}

/// One backward pass on a fixed batch, so every parameter has a gradient.
fn backward(model: &BertForSequenceClassification) {
    let loss = fixed_loss(model, true);
    bert_finetune::optim::zero_grad(&model.vs.trainable_variables()).unwrap();
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
        let (norm, ops) = count_ops(|| -> anyhow::Result<Tensor> {
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
        let ((), tch_ops) = count_ops(|| tch_opt.step()).unwrap();
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

/// The two layouts of the gradients (per tensor, and views into one flat buffer) take the same
/// AdamW steps with clipping at work, and after each step the `.grad` tensors hold what
/// PyTorch's `clip_grad_norm_` leaves (the clipping is applied inside the fused update). The
/// flat layout zeroes in one operator and keeps the step's operator count fixed.
#[test]
fn flat_and_per_tensor_gradients_take_the_same_clipped_steps() {
    let adamw = AdamWConfig {
        lr: 1e-3,
        weight_decay: 0.01,
        max_grad_norm: 0.05, // below the norms here: every step clips
        ..AdamWConfig::default()
    };
    // Three copies of one model (copied, not reseeded: tests on other threads draw from the
    // same global generator).
    let mut models: Vec<BertForSequenceClassification> = (0..3)
        .map(|_| BertForSequenceClassification::new(&config(2), Device::Cpu).unwrap())
        .collect();
    let (first, rest) = models.split_at_mut(1);
    for m in rest {
        m.vs.copy(&first[0].vs).unwrap();
    }
    let mut per_tensor = FusedAdamW::new(&models[0].vs, adamw).unwrap();
    let mut flat = FusedAdamW::new(&models[1].vs, adamw).unwrap();
    flat.set_flat_gradients(true).unwrap();
    // The reference: PyTorch's order, clip_grad_norm_ rescaling the gradients in place, then
    // an update that takes them as they are.
    let mut reference_opt = FusedAdamW::new(&models[2].vs, adamw).unwrap();
    assert!(flat.flat_gradients_on() && !per_tensor.flat_gradients_on());
    for step in 0..3 {
        // The reference: PyTorch's clip_grad_norm_ (rescaling the gradients in place).
        reference_opt.zero_grad().unwrap();
        fixed_loss(&models[2], false).backward();
        let reference_norm =
            bert_finetune::optim::clip_grad_norm(&models[2].vs.trainable_variables(), 0.05)
                .unwrap()
                .double_value(&[]);
        reference_opt.step().unwrap();
        let mut norms = Vec::new();
        for (opt, model) in [(&mut per_tensor, &models[0]), (&mut flat, &models[1])] {
            let (zeroed, zero_ops) = count_ops(|| opt.zero_grad()).unwrap();
            zeroed.unwrap();
            if opt.flat_gradients_on() {
                assert_eq!(zero_ops.top_level, 1, "one zero_ for every gradient");
            }
            fixed_loss(model, false).backward();
            let (norm, ops) = count_ops(|| -> anyhow::Result<Tensor> {
                let norm = opt.clip_grad_norm()?;
                opt.step()?;
                Ok(norm)
            })
            .unwrap();
            assert!(ops.top_level <= 16, "{ops:?}");
            norms.push(norm.unwrap().double_value(&[]));
        }
        assert!(
            reference_norm > 0.05,
            "step {step} must clip: {reference_norm}"
        );
        for norm in &norms {
            assert!(
                (norm - reference_norm).abs() <= 1e-5 * reference_norm,
                "step {step}: norm {norm} vs clip_grad_norm_'s {reference_norm}"
            );
        }
        // The clipped gradients, as clip_grad_norm_ leaves them.
        let grads = |m: &BertForSequenceClassification| -> Vec<(String, Tensor)> {
            m.named_parameters()
                .into_iter()
                .map(|(n, p)| (n, p.grad()))
                .collect()
        };
        let reference = grads(&models[2]);
        for model in &models[..2] {
            for ((name, g), (_, r)) in grads(model).iter().zip(&reference) {
                let d = max_abs_diff(g, r);
                assert!(d <= 1e-6, "step {step}, {name}: gradient differs by {d}");
            }
        }
    }
    let mut worst = 0.0f64;
    for model in &models[..2] {
        for ((name, a), (_, b)) in model
            .named_parameters()
            .iter()
            .zip(&models[2].named_parameters())
        {
            let d = max_abs_diff(a, b);
            worst = worst.max(d);
            assert!(d <= 1e-6, "{name}: {d} from the reference after 3 steps");
        }
    }
    println!(
        "per-tensor and flat gradients, 3 clipped steps: weights within {worst:e} of \
         clip_grad_norm_ + AdamW"
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
    assert!(!Autocast::is_on(Device::Cpu).unwrap());

    // A few training steps in each precision from the same start on the same batches: the
    // loss is computed in fp32 either way and must stay within 0.03 of fp32's (bf16 keeps about
    // three significant digits; the losses here are ~0.7).
    const TOLERANCE: f64 = 0.03;
    let set = cola(96, Padding::Longest);
    let batches = set.batches(16, Sampler::Sequential, Device::Cpu);
    let run = |precision: Precision| -> Vec<f64> {
        tch::manual_seed(3);
        let model = BertForSequenceClassification::new(&config(2), Device::Cpu).unwrap();
        let run = TrainConfig {
            epochs: 1,
            batch_size: 16,
            optimizer: AdamWConfig {
                lr: 1e-3,
                ..AdamWConfig::default()
            },
            precision,
            ..TrainConfig::default()
        };
        // One epoch of these 6 batches: the schedule spans exactly the steps taken here.
        let mut trainer = Trainer::new(model, run, set.clone(), set.take(1)).unwrap();
        tch::manual_seed(4);
        batches
            .iter()
            .map(|b| {
                let loss = trainer.step(b).unwrap();
                assert_eq!(loss.kind(), Kind::Float, "the loss is fp32");
                for (_, p) in trainer.model().named_parameters() {
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
        !Autocast::is_on(Device::Cpu).unwrap(),
        "autocast is off again"
    );
}

#[test]
fn precision_names_parse_and_cpu_defaults_to_fp32() {
    for p in Precision::ALL {
        assert_eq!(p.name().parse::<Precision>().unwrap(), p);
    }
    assert_eq!("float16".parse::<Precision>().unwrap(), Precision::Fp16);
    assert!("fp8".parse::<Precision>().is_err());
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

/// A training step on a batch this crate padded reads nothing back from the device (the
/// padding-free layout comes from the row lengths on the host; the loss stays where it is):
/// on a GPU, no step waits for the device. The same batch without its row lengths must read
/// the mask, which shows the count can see such reads.
#[test]
fn a_training_step_reads_nothing_back_from_the_device() {
    let set = cola(64, Padding::Bucket);
    tch::manual_seed(9);
    let model = BertForSequenceClassification::new(&config(2), Device::Cpu).unwrap();
    let run = TrainConfig {
        epochs: 1,
        batch_size: 16,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(model, run, set.clone(), set.take(1)).unwrap();
    let batches = trainer.start_epoch(1).unwrap();
    for batch in &batches {
        let (loss, ops) = count_ops(|| trainer.step(batch)).unwrap();
        let _loss_on_the_device = loss.unwrap();
        assert!(ops.top_level > 50, "the count sees the step: {ops:?}");
        assert_eq!(ops.host_reads, 0, "a step read a value back: {ops:?}");
    }
    let first = batches.get(0);
    let unplanned = bert_finetune::data::tokenizer::Encoded::new(
        first.inputs.input_ids.shallow_clone(),
        first.inputs.attention_mask.shallow_clone(),
        first.inputs.token_type_ids.shallow_clone(),
    );
    let (_, ops) = count_ops(|| trainer.model().logits(&unplanned, false)).unwrap();
    assert!(ops.host_reads >= 3, "reading the mask is seen: {ops:?}");
}
