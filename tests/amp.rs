//! fp16 mixed precision against PyTorch, on the CPU (where PyTorch 2.11 also autocasts to
//! float16): a small random BERT classifier, the same batches of real CoLA sentences, our
//! Trainer with `Precision::Fp16` beside `torch.autocast("cpu", dtype=torch.float16)` +
//! `GradScaler("cpu")` + fused AdamW + `clip_grad_norm_` as transformers' Trainer runs
//! `fp16=True` (`tests/python/amp.py`). Compared: the loss scale after every step, which steps
//! were skipped for inf/NaN gradients, the losses and the weights after 6 steps; a run resumed
//! from a checkpoint keeps its scale; fp16's losses stay near fp32's.

mod common;

use bert_finetune::data::cola::{Cola, Split};
use bert_finetune::data::tokenizer::{BertTokenizer, Padding};
use bert_finetune::data::{EncodedSet, Sampler};
use bert_finetune::model::BertForSequenceClassification;
use bert_finetune::optim::{AdamWConfig, LossScaleConfig};
use bert_finetune::runtime::precision::Precision;
use bert_finetune::tch::Device;
use bert_finetune::train::{Checkpoints, TrainConfig, Trainer};
use common::*;

const BATCH: usize = 8;

/// 48 CoLA sentences, 6 batches of 8 padded to their longest, and the same batches as JSON for
/// the Python side.
fn batches(dir: &std::path::Path) -> (EncodedSet, std::path::PathBuf) {
    let tokenizer = BertTokenizer::from_dir(minilm()).unwrap();
    let cola =
        Cola::load_split(bert_finetune::runtime::settings::cola_dir(), Split::Train).unwrap();
    let sentences: Vec<String> = cola.sentences().into_iter().take(48).collect();
    let labels: Vec<i64> = cola.labels().into_iter().take(48).collect();
    let set = EncodedSet::new(&tokenizer, &sentences, labels, 64, Padding::Longest).unwrap();
    let json: Vec<serde_json::Value> = set
        .batches(BATCH, Sampler::Sequential, Device::Cpu)
        .iter()
        .map(|b| {
            let rows = |t: &bert_finetune::tch::Tensor| -> Vec<Vec<i64>> {
                (0..t.size()[0])
                    .map(|i| Vec::<i64>::try_from(t.get(i)).unwrap())
                    .collect()
            };
            serde_json::json!({
                "input_ids": rows(&b.inputs.input_ids),
                "attention_mask": rows(&b.inputs.attention_mask),
                "token_type_ids": rows(&b.inputs.token_type_ids),
                "labels": Vec::<i64>::try_from(&b.labels).unwrap(),
            })
        })
        .collect();
    let path = dir.join("batches.json");
    std::fs::write(&path, serde_json::to_string(&json).unwrap()).unwrap();
    (set, path)
}

fn config(precision: Precision, init_scale: f64, epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: BATCH,
        precision,
        loss_scale: LossScaleConfig {
            init_scale,
            growth_interval: 2,
            ..LossScaleConfig::default()
        },
        optimizer: AdamWConfig {
            lr: 1e-3,
            weight_decay: 0.01,
            ..AdamWConfig::default()
        },
        ..TrainConfig::default()
    }
}

/// Our side: 6 steps on the batches in order; the losses, the scale after each step and the
/// skipped steps.
fn ours(
    model_dir: &std::path::Path,
    set: &EncodedSet,
    precision: Precision,
    init_scale: f64,
) -> (Trainer, Vec<f64>, Vec<f64>) {
    let model =
        BertForSequenceClassification::from_pretrained(&path_str(model_dir), 2, Device::Cpu)
            .unwrap();
    let mut trainer = Trainer::new(
        model,
        config(precision, init_scale, 1),
        set.clone(),
        set.clone(),
    )
    .unwrap();
    let (mut losses, mut scales) = (Vec::new(), Vec::new());
    for batch in set.batches(BATCH, Sampler::Sequential, Device::Cpu) {
        losses.push(trainer.step(&batch).unwrap().double_value(&[]));
        scales.push(
            trainer
                .optimizer()
                .loss_scaler()
                .map_or(f64::NAN, |s| s.scale()),
        );
    }
    (trainer, losses, scales)
}

#[test]
fn fp16_loss_scaling_matches_pytorchs_grad_scaler() {
    let dir = tmp();
    let init = dir.path().join("init");
    python("amp.py", &["init", "--out", &path_str(&init)]);
    let (set, batches_json) = batches(dir.path());
    // 2^16 (PyTorch's default: one overflow after the scale grew), 2^20 (skips, then clean
    // steps) and 2^40 (every step overflows), with growth every 2 clean steps.
    for init_scale in [65536.0, 1048576.0, 1099511627776.0] {
        let out = dir.path().join(format!("torch-{init_scale}"));
        python(
            "amp.py",
            &[
                "train",
                "--model",
                &path_str(&init),
                "--batches",
                &path_str(&batches_json),
                "--out",
                &path_str(&out),
                "--init-scale",
                &init_scale.to_string(),
                "--growth-interval",
                "2",
            ],
        );
        let want: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("reference.json")).unwrap())
                .unwrap();
        let (trainer, losses, scales) = ours(&init, &set, Precision::Fp16, init_scale);
        let want_scales: Vec<f64> = serde_json::from_value(want["scales"].clone()).unwrap();
        let want_skipped: Vec<bool> = serde_json::from_value(want["skipped"].clone()).unwrap();
        let skipped: Vec<bool> = (1..=losses.len())
            .map(|s| trainer.history().skipped_steps.contains(&s))
            .collect();
        println!("scale {init_scale}: scales {scales:?}, skipped {skipped:?}");
        assert_eq!(scales, want_scales, "the scale after every step");
        assert_eq!(skipped, want_skipped, "the skipped steps");
        let want_losses: Vec<f64> = serde_json::from_value(want["losses"].clone()).unwrap();
        let worst_loss = losses
            .iter()
            .zip(&want_losses)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        let reference = read_tensors(&out.join("reference.safetensors"));
        let mut worst = (0.0, String::new());
        for (name, t) in trainer.model().named_parameters() {
            let d = max_abs_diff(&t, &reference[&name]);
            if d > worst.0 {
                worst = (d, name);
            }
        }
        println!(
            "scale {init_scale}: losses within {worst_loss:.2e}, weights within {:.2e} ({})",
            worst.0, worst.1
        );
        assert!(worst_loss < 2e-3, "losses differ by {worst_loss}");
        assert!(worst.0 < 2e-3, "{} differs by {}", worst.1, worst.0);
    }
}

#[test]
fn fp16_losses_track_fp32_and_resume_keeps_the_scale() {
    let dir = tmp();
    let init = dir.path().join("init");
    python("amp.py", &["init", "--out", &path_str(&init)]);
    let (set, _) = batches(dir.path());
    let (_, fp16, _) = ours(&init, &set, Precision::Fp16, 65536.0);
    let (_, fp32, _) = ours(&init, &set, Precision::Fp32, 65536.0);
    let worst = fp16
        .iter()
        .zip(&fp32)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    println!("fp16 losses within {worst:.4} of fp32's over 6 steps");
    assert!(worst < 0.05, "fp16 {fp16:?} vs fp32 {fp32:?}");

    // Two epochs straight, against one epoch, a checkpoint, and a fresh trainer resumed.
    let model = |d: &std::path::Path| {
        BertForSequenceClassification::from_pretrained(&path_str(d), 2, Device::Cpu).unwrap()
    };
    let fp16_config = || config(Precision::Fp16, 1048576.0, 2);
    let mut straight = Trainer::new(model(&init), fp16_config(), set.clone(), set.clone())
        .unwrap()
        .with_checkpoints(Checkpoints {
            dir: dir.path().join("straight"),
            resume: false,
        })
        .unwrap();
    let whole = straight.fit().unwrap();
    let mut first = Trainer::new(model(&init), fp16_config(), set.clone(), set.clone())
        .unwrap()
        .with_checkpoints(Checkpoints {
            dir: dir.path().join("cut"),
            resume: false,
        })
        .unwrap();
    first.train_epoch(1).unwrap();
    first.validate().unwrap();
    first.save_checkpoint().unwrap();
    let scale_at_cut = first.optimizer().loss_scaler().unwrap().scale();
    let mut resumed = Trainer::new(model(&init), fp16_config(), set.clone(), set.clone())
        .unwrap()
        .with_checkpoints(Checkpoints {
            dir: dir.path().join("cut"),
            resume: true,
        })
        .unwrap();
    assert_eq!(
        resumed.optimizer().loss_scaler().unwrap().scale(),
        scale_at_cut,
        "the scale comes back with the checkpoint"
    );
    let rest = resumed.fit().unwrap();
    assert!(!whole.skipped_steps.is_empty(), "2^20 overflows at first");
    assert_eq!(rest.skipped_steps, whole.skipped_steps);
    assert_eq!(
        rest.batch_losses, whole.batch_losses,
        "resumed = uninterrupted"
    );
    assert_eq!(
        resumed.optimizer().loss_scaler().unwrap().scale(),
        straight.optimizer().loss_scaler().unwrap().scale()
    );
}
