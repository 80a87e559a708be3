//! Extractive question answering through the one `Trainer`: a span head fine-tuned from MiniLM
//! on questions made from real CoLA sentences (the context is five sentences; the question
//! repeats one of them and the answer is that sentence in the context), validated by span
//! accuracy after every epoch, then scored as run_qa scores: answers from the windows' logits
//! (utils_qa's post-processing) and SQuAD's exact match and F1.

mod common;

use bert_finetune::data::squad::{features, QaExample};
use bert_finetune::data::tokenizer::Padding;
use bert_finetune::data::EncodedSet;
use bert_finetune::eval::answers::{postprocess, AnswerSettings};
use bert_finetune::eval::{SquadScores, SquadVersion};
use bert_finetune::model::pretrained::load_tokenizer;
use bert_finetune::model::BertForQuestionAnswering;
use bert_finetune::optim::AdamWConfig;
use bert_finetune::runtime::device;
use bert_finetune::runtime::precision::Precision;
use bert_finetune::train::{TrainConfig, Trainer};
use common::questions::examples;
use common::*;
use tch::Device;

/// Exact match and F1 of a model's answers over `examples`.
fn squad(
    trainer_eval: &bert_finetune::eval::Evaluation,
    examples: &[QaExample],
    feats: &[bert_finetune::data::squad::QaFeature],
) -> SquadScores {
    let (starts, ends) = trainer_eval.span_logits();
    let answers = postprocess(examples, feats, &starts, &ends, AnswerSettings::default()).unwrap();
    let predicted: Vec<String> = answers.iter().map(|a| a.text.clone()).collect();
    let gold: Vec<Vec<String>> = examples
        .iter()
        .map(|e| e.answers.iter().map(|a| a.text.clone()).collect())
        .collect();
    SquadScores::new(&predicted, &gold, SquadVersion::V1).unwrap()
}

#[test]
fn a_span_head_trains_on_the_trainer_and_answers_score_as_squad() {
    let tokenizer = load_tokenizer(minilm()).unwrap();
    let (train_examples, val_examples) = (examples(240, 0), examples(60, 4000));
    let train_features = features(&tokenizer, &train_examples, 128, 32).unwrap();
    let val_features = features(&tokenizer, &val_examples, 128, 32).unwrap();
    let train = EncodedSet::windows(&train_features, tokenizer.pad_id, 128, Padding::Bucket);
    let val = EncodedSet::windows(&val_features, tokenizer.pad_id, 128, Padding::Longest);
    device::manual_seed(42);
    let model =
        BertForQuestionAnswering::from_pretrained(&path_str(&minilm()), Device::Cpu).unwrap();
    let config = TrainConfig {
        epochs: 2,
        batch_size: 16,
        seed: 7,
        log_every: 1000,
        optimizer: AdamWConfig {
            lr: 1e-4,
            ..AdamWConfig::default()
        },
        precision: Precision::Fp32,
        metric_for_best_model: Some("span_accuracy".into()),
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(model, config, train, val.clone()).unwrap();
    let before = trainer.evaluate(&val, 64).unwrap();
    let squad_before = squad(&before, &val_examples, &val_features);
    let history = trainer.fit().unwrap();
    let after = trainer.evaluate(&val, 64).unwrap();
    let squad_after = squad(&after, &val_examples, &val_features);
    let spans: Vec<f64> = history
        .epochs
        .iter()
        .map(|e| e.val_metrics["span_accuracy"])
        .collect();
    println!(
        "span accuracy {:.3} -> {spans:?}; exact match {:.1} -> {:.1}, F1 {:.1} -> {:.1}",
        before.metrics()["span_accuracy"],
        squad_before.exact,
        squad_after.exact,
        squad_before.f1,
        squad_after.f1
    );
    assert!(history.epochs[1].train_loss < history.epochs[0].train_loss);
    assert!(
        squad_after.f1 > squad_before.f1 + 20.0,
        "F1 {} -> {}",
        squad_before.f1,
        squad_after.f1
    );
    assert!(
        history.best.is_some(),
        "metric_for_best_model span_accuracy is tracked"
    );
}
