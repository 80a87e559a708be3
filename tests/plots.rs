//! The tutorial's extra figures: token lengths, confusion matrix, attention heatmap.
//! Each must render a real PNG and an SVG carrying its labels; bad requests must say why.
//! Set `BF_PLOTS_OUT=<dir>` to keep the rendered figures for a look.

mod common;

use bert_finetune::data::cola::{Cola, Split};
use bert_finetune::data::tokenizer::BertTokenizer;
use bert_finetune::eval::ConfusionMatrix;
use bert_finetune::model::BertForSequenceClassification;
use bert_finetune::viz::{self, Figure};
use common::*;
use tch::{Device, Tensor};

fn check(figure: &Figure, stem: &str, texts: &[&str]) {
    assert!(figure.png.starts_with(b"\x89PNG\r\n\x1a\n"), "{figure}");
    assert!(
        figure.png.len() > 1_000,
        "{figure} PNG is suspiciously small"
    );
    assert!(figure.svg.contains("<svg"), "{figure}");
    for text in texts {
        assert!(figure.svg.contains(text), "{figure} SVG lacks {text:?}");
    }
    if let Some(dir) = std::env::var_os("BF_PLOTS_OUT") {
        figure.save(dir, stem).unwrap();
    }
}

#[test]
fn token_lengths_of_cola_train_with_the_cut_at_64() {
    let tokenizer = BertTokenizer::from_dir(minilm()).unwrap();
    let train =
        Cola::load_split(bert_finetune::runtime::settings::cola_dir(), Split::Train).unwrap();
    let lengths: Vec<usize> = train
        .sentences()
        .iter()
        .map(|s| tokenizer.encode(s).unwrap().len())
        .collect();
    let figure = viz::token_lengths(&lengths, 64).unwrap();
    check(
        &figure,
        "token_lengths",
        &["8,551 sentences", "max_len = 64"],
    );
    assert!(
        figure.title.contains("0 longer than 64"),
        "{}",
        figure.title
    );

    // A cut inside the data: the count of sentences over it is in the title and legend.
    let figure = viz::token_lengths(&[3, 5, 5, 9, 12, 12, 30], 10).unwrap();
    check(
        &figure,
        "token_lengths_cut",
        &["3 longer than 10", "3 sentences cut"],
    );

    let err = viz::token_lengths(&[], 64).unwrap_err().to_string();
    assert!(err.contains("no lengths"), "{err}");
}

#[test]
fn confusion_matrix_shows_counts_and_class_names() {
    let cm = ConfusionMatrix {
        counts: vec![vec![162, 160], vec![79, 642]],
    };
    let figure = viz::confusion_matrix(&cm).unwrap();
    check(
        &figure,
        "confusion",
        &[
            "162",
            "160",
            "79",
            "642",
            "0 unacceptable",
            "1 acceptable",
            "predicted",
            "true",
            "1,043 sentences",
        ],
    );
    let three = ConfusionMatrix::new(&[0, 1, 2, 2], &[0, 1, 2, 1], 3);
    let figure = viz::confusion_matrix(&three).unwrap();
    check(&figure, "confusion_3", &["0 ", "2 "]);
    let err = viz::confusion_matrix_with_labels(&three, &["a", "b"])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("2 class names") && err.contains("3 classes"),
        "{err}"
    );
}

#[test]
fn attention_heatmap_of_one_head_with_token_labels() {
    let model =
        BertForSequenceClassification::from_pretrained(&path_str(&minilm()), 2, Device::Cpu)
            .unwrap();
    let tokenizer = BertTokenizer::from_dir(minilm()).unwrap();
    let sentence = "The more we study verbs, the crazier they get.";
    let figure = viz::attention_map(&model, &tokenizer, sentence, 5, 11).unwrap();
    check(
        &figure,
        "attention",
        &[
            "[CLS]",
            "[SEP]",
            "verbs",
            "crazier",
            "Layer 5, head 11",
            "query",
            "key",
        ],
    );

    let err = viz::attention_map(&model, &tokenizer, sentence, 6, 0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("layer 6") && err.contains("0 to 5"), "{err}");
    let err = viz::attention_map(&model, &tokenizer, sentence, 0, 12)
        .unwrap_err()
        .to_string();
    assert!(err.contains("head 12") && err.contains("0 to 11"), "{err}");

    // The figure function on its own: any [seq, seq] tensor, shape checked against the tokens.
    let probs = Tensor::from_slice(&[0.7f32, 0.3, 0.4, 0.6]).view([2, 2]);
    let figure = viz::attention(&["hello", "world"], &probs, "two tokens").unwrap();
    check(&figure, "attention_two", &["hello", "world"]);
    let err = viz::attention(&["a", "b", "c"], &probs, "mismatch")
        .unwrap_err()
        .to_string();
    assert!(err.contains("[2, 2]") && err.contains("3 tokens"), "{err}");
}
