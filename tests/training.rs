//! Training, evaluation, checkpoints and plots, on small models so the suite stays fast.

mod common;

use bert_finetune::data::cola::Split;
use bert_finetune::data::split;
use bert_finetune::data::tokenizer::{BertTokenizer, Padding};
use bert_finetune::eval::{self, matthews, ConfusionMatrix};
use bert_finetune::model::{BertConfig, BertForSequenceClassification};
use bert_finetune::optim::{linear_schedule, AdamWConfig, FusedAdamW, LinearSchedule};
use bert_finetune::runtime::display::Rich;
use bert_finetune::runtime::precision::Precision;
use bert_finetune::train::{Event, EventSink, History, TrainConfig, Trainer};
use bert_finetune::viz::{self, files};
use common::*;
use tch::Device;

const SENTENCES: [&str; 6] = [
    "Our friends won't buy this analysis, let alone the next one we propose.",
    "They investigated.",
    "The more we study verbs, the crazier they get.",
    "Day by day the facts are getting murkier.",
    "Cities destroy easily.",
    "Any zebras can't fly.",
];

/// libtorch's generators are global to the process and the tests of this file run on
/// parallel threads: every test that seeds and draws holds this lock, so no other test draws
/// from the generator in between.
static GENERATORS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn generators() -> std::sync::MutexGuard<'static, ()> {
    GENERATORS.lock().unwrap_or_else(|p| p.into_inner())
}

fn tiny_config() -> BertConfig {
    let mut c = BertConfig::new(30522, 32, 1, 2, 64);
    c.set_num_labels(2);
    c
}

/// Keeps a trainer's log lines where the test can read them after the run.
#[derive(Clone, Default)]
struct Lines(std::sync::Arc<std::sync::Mutex<Vec<String>>>);
impl EventSink for Lines {
    fn on_event(&mut self, event: &Event<'_>, _history: &History) {
        if let Some(line) = event.log_line() {
            self.0
                .lock()
                .unwrap()
                .extend(line.lines().map(str::to_string));
        }
    }
}

fn fit(
    model: BertForSequenceClassification,
    train: &bert_finetune::data::EncodedSet,
    val: &bert_finetune::data::EncodedSet,
    config: &TrainConfig,
    lines: &Lines,
) -> anyhow::Result<(Trainer, History)> {
    let mut trainer =
        Trainer::new(model, config.clone(), train.clone(), val.clone())?.with_sink(lines.clone());
    let history = trainer.fit()?;
    Ok((trainer, history))
}

fn small_sets(
    n: usize,
) -> (
    bert_finetune::data::EncodedSet,
    bert_finetune::data::EncodedSet,
) {
    let tokenizer = BertTokenizer::from_dir(minilm()).unwrap();
    let (train, val) = split::train_validation(
        &tokenizer,
        bert_finetune::runtime::settings::cola_dir(),
        64,
        Padding::Longest,
        42,
        Some(n),
    )
    .unwrap();
    (train, val)
}

#[test]
fn two_adamw_steps_match_pytorch() {
    // all-MiniLM-L6-v2 with a fresh head, lr 1e-3 and weight decay 1.0 so that every part of
    // the update (moments, bias correction, decay groups, schedule, clipping) moves weights by
    // far more than the 1e-4 tolerance. eps is 1e-6 rather than 1e-8: some gradients are zero
    // in exact arithmetic (attention key biases) and come out as ±1e-10 rounding noise, which
    // Adam with eps 1e-8 blows up to full-size steps of random sign on either side.
    let dir = tmp();
    let mut args = vec![
        "train-steps".to_string(),
        "--model".into(),
        minilm().display().to_string(),
        "--lr".into(),
        "1e-3".into(),
        "--weight-decay".into(),
        "1.0".into(),
        "--eps".into(),
        "1e-6".into(),
        "--out".into(),
        dir.path().display().to_string(),
    ];
    args.extend(SENTENCES.iter().map(|s| s.to_string()));
    python(
        "reference.py",
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let steps: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("steps.json")).unwrap())
            .unwrap();
    let after = read_tensors(&dir.path().join("after.safetensors"));

    let model = BertForSequenceClassification::from_pretrained(
        dir.path().join("model").to_str().unwrap(),
        2,
        Device::Cpu,
    )
    .unwrap();
    let config = AdamWConfig {
        lr: 1e-3,
        eps: 1e-6,
        weight_decay: 1.0,
        ..AdamWConfig::default()
    };
    let mut opt = FusedAdamW::new(&model.vs, config).unwrap();
    let mut scheduler = LinearSchedule::new(&mut opt, 0, 4);
    let (ids, mask, labels) = (
        &after["input_ids"],
        &after["attention_mask"],
        &after["labels"],
    );
    for step in 0..2 {
        let logits = model.forward(ids, mask, &ids.zeros_like(), false);
        let loss = logits.cross_entropy_for_logits(labels);
        opt.zero_grad().unwrap();
        loss.backward();
        let norm = opt.clip_grad_norm().unwrap().double_value(&[]);
        opt.step().unwrap();
        scheduler.step(&mut opt);
        let (py_loss, py_norm) = (
            steps["losses"][step].as_f64().unwrap(),
            steps["grad_norms"][step].as_f64().unwrap(),
        );
        println!(
            "step {step}: loss {} vs {py_loss}, norm {norm} vs {py_norm}",
            loss.double_value(&[])
        );
        assert!(
            (loss.double_value(&[]) - py_loss).abs() <= 1e-4,
            "loss at step {step}"
        );
        assert!(
            (norm - py_norm).abs() <= 1e-4 * py_norm.max(1.0),
            "grad norm at step {step}"
        );
    }
    let norms = steps["grad_norms"].as_array().unwrap();
    assert!(
        norms.iter().any(|n| n.as_f64().unwrap() > 1.0),
        "the test must exercise clipping"
    );
    let mut worst = 0.0f64;
    for (name, value) in model.named_parameters() {
        let reference = after
            .get(&name)
            .unwrap_or_else(|| panic!("python lacks {name}"));
        let d = max_abs_diff(&value, reference);
        assert!(d <= 1e-4, "{name} differs by {d} after two steps");
        worst = worst.max(d);
    }
    println!("worst parameter difference after two steps: {worst:.2e}");
    assert!(
        (opt.lr() - 1e-3 * 0.5).abs() < 1e-15,
        "schedule after 2 of 4 steps"
    );
}

#[test]
fn linear_schedule_matches_transformers() {
    assert_eq!(linear_schedule(0, 0, 10), 1.0);
    assert_eq!(linear_schedule(5, 0, 10), 0.5);
    assert_eq!(linear_schedule(10, 0, 10), 0.0);
    assert_eq!(linear_schedule(1, 2, 10), 0.5);
    assert_eq!(linear_schedule(2, 2, 10), 1.0);
    assert_eq!(linear_schedule(6, 2, 10), 0.5);
}

#[test]
fn matthews_correlation_known_values() {
    // sklearn's documented example: [+1, +1, +1, -1] vs [+1, -1, +1, +1] → -0.333…
    assert!((matthews(&[1, 0, 1, 1], &[1, 1, 1, 0]) + 1.0 / 3.0).abs() < 1e-12);
    assert_eq!(matthews(&[1, 0, 1, 0], &[1, 0, 1, 0]), 1.0);
    assert_eq!(matthews(&[0, 1, 0, 1], &[1, 0, 1, 0]), -1.0);
    // 0/0 cases: a single predicted class, or a single true class.
    assert_eq!(matthews(&[1, 1, 1, 1], &[1, 0, 1, 0]), 0.0);
    assert_eq!(matthews(&[1, 0, 1, 0], &[1, 1, 1, 1]), 0.0);
    assert_eq!(matthews(&[], &[]), 0.0);
    // A hand-computed binary case: tp=3, tn=2, fp=1, fn=2 → (6-2)/sqrt(4·5·3·4).
    let preds = [1, 1, 1, 1, 0, 0, 0, 0];
    let labels = [1, 1, 1, 0, 1, 1, 0, 0];
    assert!((matthews(&preds, &labels) - 4.0 / (240f64).sqrt()).abs() < 1e-12);
    let cm = ConfusionMatrix::new(&preds, &labels, 2);
    assert_eq!(cm.counts, vec![vec![2, 1], vec![2, 3]]);
    assert_eq!(eval::accuracy(&preds, &labels), 5.0 / 8.0);
}

#[test]
fn training_is_seeded_and_a_nan_names_its_step() {
    let _generators = generators();
    let (train_set, val_set) = small_sets(64);
    let config = TrainConfig {
        epochs: 1,
        batch_size: 16,
        log_every: 2,
        ..TrainConfig::default()
    };
    let run = || {
        tch::manual_seed(7);
        let model = BertForSequenceClassification::new(&tiny_config(), Device::Cpu).unwrap();
        let log = Lines::default();
        let (_, history) = fit(model, &train_set, &val_set, &config, &log).unwrap();
        let lines = log.0.lock().unwrap().clone();
        (history, lines)
    };
    let (a, log) = run();
    let (b, _) = run();
    assert_eq!(a.batch_losses.len(), 4);
    assert_eq!(a.batch_losses, b.batch_losses, "same seed, same losses");
    assert!(
        log.iter()
            .any(|l| l.contains("Batch     2  of      4.    Elapsed: 0:00:")),
        "{log:?}"
    );
    assert!(log.iter().any(|l| l.starts_with("  Accuracy: ")), "{log:?}");

    let json = a.to_json().unwrap();
    let back = History::from_json(&json).unwrap();
    assert_eq!(back.batch_losses, a.batch_losses);
    assert_eq!(back.config.seed, 42);
    assert!(a.to_string().contains("valid. accuracy"));

    let model = BertForSequenceClassification::new(&tiny_config(), Device::Cpu).unwrap();
    tch::no_grad(|| {
        let _ = model.classifier.weight.shallow_clone().fill_(f64::NAN);
    });
    let err = fit(model, &train_set, &val_set, &config, &Lines::default())
        .err()
        .expect("a NaN loss stops training");
    assert!(format!("{err:#}").contains("step 1"), "{err:#}");
}

#[test]
fn saved_checkpoint_reloads_here_and_in_transformers() {
    let _generators = generators();
    tch::manual_seed(11);
    let tokenizer = BertTokenizer::from_dir(minilm()).unwrap();
    let mut model = BertForSequenceClassification::new(&tiny_config(), Device::Cpu).unwrap();
    model
        .config
        .set_labels(&bert_finetune::data::cola::LABELS.map(String::from));
    let dir = tmp();
    let out = dir.path().join("model_save");
    let written = model.save_pretrained(&out, Some(&tokenizer)).unwrap();
    assert!(written.iter().any(|p| p.ends_with("model.safetensors")));
    let listing = files::list_files(&out).unwrap().to_string();
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "vocab.txt",
    ] {
        assert!(listing.contains(f), "{listing}");
    }
    assert!(!listing.contains(".partial"));

    let batch = tokenizer
        .encode_batch(&SENTENCES.map(String::from), 64, Padding::Longest)
        .unwrap();
    let before = tch::no_grad(|| model.logits(&batch, false));
    let reloaded =
        BertForSequenceClassification::from_pretrained(out.to_str().unwrap(), 2, Device::Cpu)
            .unwrap();
    assert!(reloaded.load_report.as_ref().unwrap().is_clean());
    assert_eq!(reloaded.config.label_name(0), "unacceptable");
    let after = tch::no_grad(|| reloaded.logits(&batch, false));
    assert!(before.equal(&after), "reloaded logits are identical");

    let mut args = vec![
        "logits".to_string(),
        "--model".into(),
        out.display().to_string(),
    ];
    args.extend(["--out".into(), dir.path().display().to_string()]);
    args.extend(SENTENCES.iter().map(|s| s.to_string()));
    let printed = python(
        "reference.py",
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert!(printed.contains("\"1\": \"acceptable\""), "{printed}");
    let reference = read_tensors(&dir.path().join("reference.safetensors"));
    let d = max_abs_diff(&before, &reference["logits"]);
    assert!(d <= 1e-4, "transformers sees logits {d} away");
}

#[test]
fn evaluation_and_plots_render() {
    let _generators = generators();
    let (train_set, val_set) = small_sets(48);
    tch::manual_seed(5);
    let model = BertForSequenceClassification::new(&tiny_config(), Device::Cpu).unwrap();
    let config = TrainConfig {
        epochs: 2,
        batch_size: 16,
        ..TrainConfig::default()
    };
    let (trainer, history) = fit(model, &train_set, &val_set, &config, &Lines::default()).unwrap();
    let model = trainer.model();
    let tokenizer = BertTokenizer::from_dir(minilm()).unwrap();
    let test = split::encode_split(
        &tokenizer,
        bert_finetune::runtime::settings::cola_dir(),
        Split::OutOfDomainDev,
        64,
        Padding::Longest,
        Some(70),
    )
    .unwrap();
    let scored = eval::evaluate(model, &test, 32, Precision::Fp32).unwrap();
    assert_eq!(scored.preds.len(), 70);
    assert_eq!(scored.per_batch_mcc().len(), 3);
    let text = scored.to_string();
    assert!(
        text.contains("MCC per batch: [") && text.contains("\nMCC: "),
        "{text}"
    );
    let total: usize = scored.confusion().counts.iter().flatten().sum();
    assert_eq!(total, 70);

    for figure in [
        viz::loss_curve(&history).unwrap(),
        viz::batch_loss_curve(&history, 3).unwrap(),
        viz::accuracy_curve(&history).unwrap(),
        viz::mcc_bars(&scored).unwrap(),
    ] {
        assert!(figure.png.starts_with(b"\x89PNG\r\n\x1a\n"), "{figure}");
        assert!(
            figure.png.len() > 5_000,
            "{figure} PNG is suspiciously small"
        );
        assert!(figure.svg.contains("<svg"));
        assert!(
            figure.svg.contains(&figure.title.replace('&', "&amp;")),
            "{figure} SVG lacks its title"
        );
        let mimes: Vec<&str> = figure.mime_bundle().iter().map(|(m, _)| *m).collect();
        assert_eq!(mimes, ["text/plain", "image/png", "image/svg+xml"]);
    }
    let dir = tmp();
    let files = viz::loss_curve(&history)
        .unwrap()
        .save(dir.path(), "loss")
        .unwrap();
    assert_eq!(files.len(), 2);
}

#[test]
fn the_trainer_refuses_settings_by_field_before_any_work() {
    let (train_set, val_set) = small_sets(32);
    let refused = |config: TrainConfig| {
        let model = BertForSequenceClassification::new(&tiny_config(), Device::Cpu).unwrap();
        match Trainer::new(model, config, train_set.clone(), val_set.clone()) {
            Ok(_) => panic!("accepted"),
            Err(e) => format!("{e:#}"),
        }
    };
    assert_eq!(
        refused(TrainConfig {
            epochs: 0,
            ..TrainConfig::default()
        }),
        "TrainConfig.epochs = 0: train for at least 1 epoch"
    );
    let mut config = TrainConfig::default();
    config.optimizer.lr = f64::NAN;
    assert_eq!(
        refused(config),
        "TrainConfig.optimizer.lr = NaN: must be a finite number > 0"
    );
    let mut config = TrainConfig::default();
    config.optimizer.warmup_steps = 100;
    assert_eq!(
        refused(config),
        "TrainConfig.optimizer.warmup_steps = 100: the run has only 4 steps (1 steps × 4 epochs)"
    );
    let mut tiny = tiny_config();
    tiny.max_position_embeddings = 16;
    let model = BertForSequenceClassification::new(&tiny, Device::Cpu).unwrap();
    let err = Trainer::new(model, TrainConfig::default(), train_set, val_set)
        .err()
        .expect("64 positions do not fit 16");
    assert!(format!("{err}").contains("position embeddings"), "{err}");
}

/// The notebook writes the loop from the trainer's pieces; it must train exactly as `fit`.
#[test]
fn a_loop_of_the_trainers_pieces_trains_as_fit() {
    let _generators = generators();
    let (train_set, val_set) = small_sets(48);
    let config = TrainConfig {
        epochs: 2,
        batch_size: 16,
        ..TrainConfig::default()
    };
    let trainer = || {
        tch::manual_seed(21);
        let model = BertForSequenceClassification::new(&tiny_config(), Device::Cpu).unwrap();
        Trainer::new(model, config.clone(), train_set.clone(), val_set.clone())
            .unwrap()
            .with_sink(Lines::default())
    };
    let fitted = trainer().fit().unwrap();
    let mut by_hand = trainer();
    let err = by_hand.start_epoch(2).expect_err("epoch 1 is due first");
    assert!(
        format!("{err}").contains("the next epoch due is 1 of 2"),
        "{err}"
    );
    for epoch in by_hand.remaining_epochs() {
        let batches = by_hand.start_epoch(epoch).unwrap();
        for batch in &batches {
            let _loss = by_hand.step(batch).unwrap();
        }
        by_hand.finish_epoch().unwrap();
        by_hand.validate().unwrap();
    }
    let by_hand = by_hand.finish();
    assert_eq!(by_hand.batch_losses, fitted.batch_losses);
    assert_eq!(by_hand.batch_losses.len(), 6);
    let mcc = |h: &History| h.epochs.iter().map(|e| e.val_mcc).collect::<Vec<_>>();
    assert_eq!(mcc(&by_hand), mcc(&fitted));
}

fn no_dropout_config() -> BertConfig {
    let mut c = tiny_config();
    c.hidden_dropout_prob = 0.0;
    c.attention_probs_dropout_prob = 0.0;
    c
}

fn weights_of(trainer: &Trainer) -> Vec<(String, tch::Tensor)> {
    trainer.model().named_parameters()
}

/// Two steps of batches of 8 with gradients accumulated over 2 give the weights of two steps
/// of batches of 16 (dropout off), up to float rounding.
#[test]
fn gradient_accumulation_equals_the_larger_batch() {
    let _generators = generators();
    let (train_set, val_set) = small_sets(36);
    let train_set = train_set.take(32);
    let run = |batch_size, k| {
        tch::manual_seed(5);
        let model = BertForSequenceClassification::new(&no_dropout_config(), Device::Cpu).unwrap();
        let config = TrainConfig {
            epochs: 1,
            batch_size,
            gradient_accumulation_steps: k,
            optimizer: AdamWConfig {
                lr: 1e-3,
                weight_decay: 0.01,
                ..AdamWConfig::default()
            },
            ..TrainConfig::default()
        };
        let mut trainer = Trainer::new(model, config, train_set.clone(), val_set.clone())
            .unwrap()
            .with_sink(Lines::default());
        assert_eq!(trainer.total_steps(), 2);
        trainer.train_epoch(1).unwrap();
        trainer
    };
    let (big, accumulated) = (run(16, 1), run(8, 2));
    let mut worst = 0.0f64;
    let mut moved = 0.0f64;
    let before = {
        tch::manual_seed(5);
        BertForSequenceClassification::new(&no_dropout_config(), Device::Cpu)
            .unwrap()
            .named_parameters()
    };
    for (((name, a), (_, b)), (_, start)) in weights_of(&big)
        .iter()
        .zip(weights_of(&accumulated))
        .zip(&before)
    {
        let diff = (a - &b).abs().max().double_value(&[]);
        worst = worst.max(diff);
        moved = moved.max((a - start).abs().max().double_value(&[]));
        assert!(diff <= 1e-5, "{name}: {diff}");
    }
    assert!(moved > 1e-4, "the two steps changed the weights ({moved})");
    eprintln!("largest weight difference after two steps: {worst:e}");
    assert_eq!(accumulated.history().batch_losses.len(), 4);
    assert_eq!(big.history().batch_losses.len(), 2);
}

/// With no room to improve (a learning rate too small to move the loss past the threshold),
/// early stopping ends the run after epoch 1 + patience, and the best (epoch 1) weights are
/// the ones left in the model.
#[test]
fn early_stopping_stops_at_the_right_epoch_and_the_best_weights_come_back() {
    let _generators = generators();
    let (train_set, val_set) = small_sets(40);
    tch::manual_seed(3);
    let model = BertForSequenceClassification::new(&tiny_config(), Device::Cpu).unwrap();
    let config = TrainConfig {
        epochs: 6,
        batch_size: 16,
        optimizer: AdamWConfig {
            lr: 1e-9,
            ..AdamWConfig::default()
        },
        metric_for_best_model: Some("eval_loss".into()),
        early_stopping_patience: Some(2),
        early_stopping_threshold: 1e-3,
        ..TrainConfig::default()
    };
    let lines = Lines::default();
    let (trainer, history) = fit(model, &train_set, &val_set, &config, &lines).unwrap();
    assert_eq!(
        history.epochs.len(),
        3,
        "epoch 1, then 2 without improvement"
    );
    assert!(history.stopped_early);
    let best = history.best.clone().unwrap();
    let lowest = history
        .epochs
        .iter()
        .map(|e| e.val_loss)
        .fold(f64::INFINITY, f64::min);
    assert_eq!(best.value, lowest, "the best is the lowest validation loss");
    let text = lines.0.lock().unwrap().join("\n");
    assert!(text.contains("Early stopping after epoch 3"), "{text}");
    assert!(text.contains("Loaded the best weights: loss"), "{text}");
    // The model holds the best evaluation's weights: scoring it again gives the best loss.
    let again = trainer.evaluate(&val_set, 128).unwrap();
    assert!(
        (again.loss - best.value).abs() < 1e-12,
        "{} vs {}",
        again.loss,
        best.value
    );

    // Where the metric keeps improving, patience never runs out.
    tch::manual_seed(3);
    let model = BertForSequenceClassification::new(&tiny_config(), Device::Cpu).unwrap();
    let config = TrainConfig {
        epochs: 3,
        optimizer: AdamWConfig {
            lr: 1e-3,
            ..AdamWConfig::default()
        },
        metric_for_best_model: Some("loss".into()),
        early_stopping_patience: Some(1),
        ..config
    };
    let (_, history) = fit(model, &train_set, &val_set, &config, &Lines::default()).unwrap();
    let losses: Vec<f64> = history.epochs.iter().map(|e| e.val_loss).collect();
    let rule_stops_at = losses.windows(2).position(|w| w[1] >= w[0]).map(|i| i + 2);
    assert_eq!(
        history.stopped_early,
        rule_stops_at.is_some(),
        "losses {losses:?}"
    );
    assert_eq!(
        history.epochs.len(),
        rule_stops_at.unwrap_or(3),
        "losses {losses:?}"
    );
}

/// Evaluation every N steps files each evaluation; class weights change the loss as
/// PyTorch's weighted cross-entropy; a metric the problem type lacks is refused by name.
#[test]
fn eval_steps_class_weights_and_metric_names() {
    let _generators = generators();
    let (train_set, val_set) = small_sets(40);
    tch::manual_seed(4);
    let model = BertForSequenceClassification::new(&tiny_config(), Device::Cpu).unwrap();
    let config = TrainConfig {
        epochs: 1,
        batch_size: 4,
        eval_steps: Some(3),
        class_weights: Some(vec![2.0, 0.5]),
        metric_for_best_model: Some("mcc".into()),
        ..TrainConfig::default()
    };
    let (_, history) = fit(model, &train_set, &val_set, &config, &Lines::default()).unwrap();
    // 40 rows in batches of 4: 10 steps, evaluated after 3, 6 and 9 and at the epoch's end.
    assert_eq!(train_set.len(), 40);
    let steps: Vec<usize> = history.evaluations.iter().map(|e| e.step).collect();
    assert_eq!(steps, [3, 6, 9, 10]);
    assert!((history.evaluations[0].epoch - 0.3).abs() < 1e-9);
    assert!(history.best.is_some());

    let logits = tch::Tensor::from_slice2(&[[1.0f32, -0.5], [0.2, 0.3], [-1.0, 2.0]]);
    let labels = tch::Tensor::from_slice(&[0i64, 0, 1]);
    let w = tch::Tensor::from_slice(&[2.0f32, 0.5]);
    let ours = bert_finetune::model::heads::weighted_loss(
        bert_finetune::data::ProblemType::SingleLabelClassification,
        &logits,
        &labels,
        Some(&w),
    )
    .unwrap()
    .double_value(&[]);
    // By hand: Σ w_y · CE_i / Σ w_y.
    let ce = |l: [f64; 2], y: usize| (l[0].exp() + l[1].exp()).ln() - l[y];
    let by_hand =
        (2.0 * ce([1.0, -0.5], 0) + 2.0 * ce([0.2, 0.3], 0) + 0.5 * ce([-1.0, 2.0], 1)) / 4.5;
    assert!((ours - by_hand).abs() < 1e-6, "{ours} vs {by_hand}");
    assert_eq!(
        bert_finetune::model::heads::balanced_class_weights(&[0, 0, 0, 1], 2).unwrap(),
        [4.0 / 6.0, 2.0],
        "scikit-learn's n / (k · count)"
    );

    let model = BertForSequenceClassification::new(&tiny_config(), Device::Cpu).unwrap();
    let config = TrainConfig {
        metric_for_best_model: Some("pearson".into()),
        ..TrainConfig::default()
    };
    let err = Trainer::new(model, config, train_set.clone(), val_set.clone())
        .err()
        .unwrap();
    assert!(
        format!("{err}").contains("TrainConfig.metric_for_best_model = pearson: a single_label_classification run reports loss, accuracy, mcc, macro_f1, f1"),
        "{err}"
    );
}

/// A run keeping the best model resumes from a checkpoint with its best weights: stopped
/// after epoch 1 and resumed, it ends with the same best, the same history and the same
/// weights as the run that never stopped.
#[test]
fn a_resumed_run_keeps_its_best_weights() {
    let _generators = generators();
    let (train_set, val_set) = small_sets(32);
    let dir = tmp();
    let config = TrainConfig {
        epochs: 3,
        batch_size: 16,
        optimizer: AdamWConfig {
            lr: 1e-3,
            ..AdamWConfig::default()
        },
        metric_for_best_model: Some("accuracy".into()),
        ..TrainConfig::default()
    };
    let trainer = |seed| {
        tch::manual_seed(seed);
        let model = BertForSequenceClassification::new(&tiny_config(), Device::Cpu).unwrap();
        Trainer::new(model, config.clone(), train_set.clone(), val_set.clone())
            .unwrap()
            .with_sink(Lines::default())
    };
    let mut whole = trainer(8);
    let whole_history = whole.fit().unwrap();

    let mut first = trainer(8)
        .with_checkpoints(bert_finetune::train::Checkpoints {
            dir: dir.path().to_path_buf(),
            resume: false,
        })
        .unwrap();
    assert!(first.train_epoch(1).unwrap());
    first.validate().unwrap();
    first.save_checkpoint().unwrap();
    drop(first);
    let mut resumed = trainer(99)
        .with_checkpoints(bert_finetune::train::Checkpoints {
            dir: dir.path().to_path_buf(),
            resume: true,
        })
        .unwrap();
    let resumed_history = resumed.fit().unwrap();
    assert!(
        whole_history.best.as_ref().unwrap().step < 6,
        "the best is an earlier epoch's ({:?}), so the resumed run must restore it from the \
         checkpoint",
        whole_history.best
    );
    assert_eq!(resumed_history.best, whole_history.best);
    assert_eq!(resumed_history.batch_losses, whole_history.batch_losses);
    for ((name, a), (_, b)) in weights_of(&whole).iter().zip(weights_of(&resumed)) {
        assert!(a.equal(&b), "{name} differs");
    }
}
