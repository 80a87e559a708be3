//! Masked-LM training on the one `Trainer`: a set of CoLA sentences masked afresh every epoch
//! from the epoch's seed, the validation set masked the same way at every validation, the
//! validation perplexity (exp of the mean loss, as run_mlm reports it) falling as MiniLM's
//! fresh head learns, and a run stopped after an epoch and resumed from its checkpoint giving
//! the uninterrupted run's batch losses.

mod common;

use bert_finetune::data::cola::{Cola, Split};
use bert_finetune::data::masking::Masking;
use bert_finetune::data::tokenizer::Padding;
use bert_finetune::data::{EncodedSet, Labels};
use bert_finetune::eval::evaluate;
use bert_finetune::model::BertForMaskedLM;
use bert_finetune::optim::AdamWConfig;
use bert_finetune::runtime::precision::Precision;
use bert_finetune::train::{Checkpoints, TrainConfig, Trainer};
use common::*;
use tch::Device;

fn sets() -> (EncodedSet, EncodedSet) {
    let tokenizer = bert_finetune::model::pretrained::load_tokenizer(minilm()).unwrap();
    let cola =
        Cola::load_split(bert_finetune::runtime::settings::cola_dir(), Split::Train).unwrap();
    let sentences = cola.sentences();
    let masking = Masking::for_tokenizer(0.15, &tokenizer, 30522).unwrap();
    let set = |range: std::ops::Range<usize>| {
        EncodedSet::for_masked_lm(
            &tokenizer,
            &sentences[range],
            64,
            Padding::Bucket,
            masking.clone(),
        )
        .unwrap()
    };
    (set(0..96), set(1000..1032))
}

fn config() -> TrainConfig {
    TrainConfig {
        epochs: 2,
        batch_size: 16,
        seed: 42,
        optimizer: AdamWConfig {
            lr: 1e-4,
            ..AdamWConfig::default()
        },
        ..TrainConfig::default()
    }
}

/// MiniLM with a fresh masked-LM head, the same head every call.
fn model() -> BertForMaskedLM {
    bert_finetune::runtime::device::manual_seed(5);
    BertForMaskedLM::from_pretrained(&path_str(&minilm()), Device::Cpu).unwrap()
}

#[test]
fn each_epoch_masks_afresh_and_validation_masks_alike() {
    let (train, val) = sets();
    let (a, b) = (train.masked(1), train.masked(2));
    let (Labels::Tokens(la), Labels::Tokens(lb)) = (&a.labels, &b.labels) else {
        panic!("a masked set has token labels")
    };
    assert_ne!(la, lb, "two epochs' seeds draw two masks");
    assert_ne!(a.ids, train.ids, "the masked ids differ from the texts'");
    assert_eq!(val.masked(42).ids, val.masked(42).ids);
    assert!(a.masking.is_none() && train.masking.is_some());
    // A training batch masks its rows as it is drawn, exactly as the whole pass masks them.
    let rows = [7, 3, 50];
    let batch = train.batch_of_pass(&rows, 1, Device::Cpu);
    let whole = a.batch_of(&rows, Device::Cpu);
    assert!(batch.inputs.input_ids.equal(&whole.inputs.input_ids));
    assert!(batch.labels.equal(&whole.labels));
}

#[test]
fn perplexity_falls_and_a_resumed_run_equals_the_uninterrupted_one() {
    let dir = tmp();
    let (train, val) = sets();
    let before = evaluate(&model(), &val.masked(42), 64, Precision::Fp32).unwrap();
    let perplexity = |m: &std::collections::BTreeMap<String, f64>| m["perplexity"];

    let mut straight = Trainer::new(model(), config(), train.clone(), val.clone())
        .unwrap()
        .with_checkpoints(Checkpoints {
            dir: dir.path().join("straight"),
            resume: false,
        })
        .unwrap();
    let whole = straight.fit().unwrap();
    let after: Vec<f64> = whole
        .epochs
        .iter()
        .map(|e| perplexity(&e.val_metrics))
        .collect();
    println!(
        "validation perplexity: {:.1} before, {:?} after each epoch; masked-token accuracy {:.3}",
        before.loss.exp(),
        after,
        whole.epochs.last().unwrap().val_metrics["accuracy"]
    );
    assert!((before.metrics()["perplexity"] - before.loss.exp()).abs() < 1e-9);
    // The fresh head starts near a uniform guess over 30,522 ids; a few steps cut that many
    // times over (6 steps an epoch here, so the second epoch is noise around the first).
    assert!(
        after.iter().all(|&p| p < before.loss.exp() / 5.0),
        "{after:?}"
    );

    let mut first = Trainer::new(model(), config(), train.clone(), val.clone())
        .unwrap()
        .with_checkpoints(Checkpoints {
            dir: dir.path().join("cut"),
            resume: false,
        })
        .unwrap();
    first.train_epoch(1).unwrap();
    first.validate().unwrap();
    first.save_checkpoint().unwrap();
    let mut resumed = Trainer::new(model(), config(), train, val)
        .unwrap()
        .with_checkpoints(Checkpoints {
            dir: dir.path().join("cut"),
            resume: true,
        })
        .unwrap();
    let rest = resumed.fit().unwrap();
    assert_eq!(
        rest.batch_losses, whole.batch_losses,
        "resumed = uninterrupted"
    );
}
