//! Token classification through the one `Trainer`: a tagger fine-tuned from MiniLM on tags
//! made from real CoLA sentences (person names, and determiner phrases of two words), scored
//! with seqeval's entity F1 after every epoch, its best epoch kept by `metric_for_best_model
//! = "f1"`, and a run stopped after epoch 1 and resumed from its checkpoint ending where the
//! uninterrupted run ends.

mod common;

use bert_finetune::data::tokenizer::Padding;
use bert_finetune::data::EncodedSet;
use bert_finetune::eval;
use bert_finetune::model::pretrained::load_tokenizer;
use bert_finetune::model::BertForTokenClassification;
use bert_finetune::optim::AdamWConfig;
use bert_finetune::runtime::device;
use bert_finetune::runtime::precision::Precision;
use bert_finetune::train::{Checkpoints, TrainConfig, Trainer};
use common::*;
use tch::Device;

use common::tags::{tagged, TAGS};

fn tagger() -> BertForTokenClassification {
    device::manual_seed(42);
    let mut model =
        BertForTokenClassification::from_pretrained(&path_str(&minilm()), TAGS.len(), Device::Cpu)
            .unwrap();
    model.config.set_labels(&TAGS.map(String::from));
    model
}

fn sets() -> (EncodedSet, EncodedSet) {
    let tokenizer = load_tokenizer(minilm()).unwrap();
    let (w, t) = tagged(240, 0);
    let train = EncodedSet::tagged(&tokenizer, &w, &t, 48, Padding::Bucket, None).unwrap();
    let (w, t) = tagged(80, 1);
    let val = EncodedSet::tagged(&tokenizer, &w, &t, 48, Padding::Longest, None).unwrap();
    (train, val)
}

fn config() -> TrainConfig {
    TrainConfig {
        epochs: 2,
        batch_size: 16,
        seed: 7,
        log_every: 1000,
        optimizer: AdamWConfig {
            lr: 1e-4,
            ..AdamWConfig::default()
        },
        precision: Precision::Fp32,
        metric_for_best_model: Some("f1".into()),
        ..TrainConfig::default()
    }
}

#[test]
fn a_tagger_trains_on_the_trainer_with_entity_f1_best_model_and_exact_resume() {
    let (train, val) = sets();
    let before = eval::evaluate(&tagger(), &val, 64, Precision::Fp32).unwrap();
    let f1_before = before.metrics()["f1"];

    let dir = tmp();
    let mut trainer = Trainer::new(tagger(), config(), train.clone(), val.clone())
        .unwrap()
        .with_checkpoints(Checkpoints {
            dir: dir.path().join("a"),
            resume: false,
        })
        .unwrap();
    let history = trainer.fit().unwrap();
    let f1: Vec<f64> = history.epochs.iter().map(|e| e.val_metrics["f1"]).collect();
    println!("entity F1 before training {f1_before:.3}, after each epoch {f1:?}");
    println!(
        "{}",
        trainer.evaluate(&val, 64).unwrap().entities().unwrap()
    );
    assert!(f1[1] > f1_before + 0.3, "F1 {f1_before} -> {f1:?}");
    assert!(history.epochs[1].train_loss < history.epochs[0].train_loss);
    assert!(
        history.best.is_some(),
        "metric_for_best_model f1 is tracked"
    );

    // Stopped after epoch 1 (the notebook's loop, one epoch of it), then resumed.
    let b = dir.path().join("b");
    let mut first = Trainer::new(tagger(), config(), train.clone(), val.clone())
        .unwrap()
        .with_checkpoints(Checkpoints {
            dir: b.clone(),
            resume: false,
        })
        .unwrap();
    assert!(first.train_epoch(1).unwrap());
    first.validate().unwrap();
    first.save_checkpoint().unwrap();
    drop(first);
    let mut resumed = Trainer::new(tagger(), config(), train, val)
        .unwrap()
        .with_checkpoints(Checkpoints {
            dir: b,
            resume: true,
        })
        .unwrap();
    let again = resumed.fit().unwrap();
    assert_eq!(again.batch_losses, history.batch_losses);
    let f1_again: Vec<f64> = again.epochs.iter().map(|e| e.val_metrics["f1"]).collect();
    assert_eq!(f1_again, f1);
    for ((name, a), (_, b)) in trainer
        .model()
        .named_parameters()
        .iter()
        .zip(resumed.model().named_parameters())
    {
        assert!(
            max_abs_diff(a, &b) == 0.0,
            "{name} differs after the resume"
        );
    }
}
