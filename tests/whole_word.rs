//! Whole-word masking against transformers' collator (`DataCollatorForLanguageModeling` with
//! `whole_word_mask=True`) on the same words: 1,000 CoLA lines tokenized into the token cache
//! mark the word starts the collator computes from the offsets; every word our masking
//! chooses is masked whole, as the collator's own expansion of the chosen first pieces gives;
//! about 15 % of the words are chosen, and their pieces split 80/10/10.

mod common;

use bert_finetune::data::cola::{Cola, Split};
use bert_finetune::data::corpus::{Corpus, Grouping};
use bert_finetune::data::masking::Masking;
use bert_finetune::data::tagging::IGNORE_INDEX;
use common::*;

#[test]
fn whole_words_are_the_collators_words_and_are_masked_whole() {
    let dir = tmp();
    let cola = Cola::load_split(bert_finetune::runtime::settings::cola_dir(), Split::Train)
        .unwrap()
        .sentences();
    let file = dir.path().join("corpus.txt");
    std::fs::write(&file, cola[..1000].join("\n") + "\n").unwrap();
    let tokenizer = bert_finetune::model::pretrained::load_tokenizer(minilm()).unwrap();
    let corpus = Corpus::new(&file, None, Grouping::Lines).unwrap();
    let store = corpus
        .tokenize(&tokenizer, 64, &dir.path().join("cache"), &mut |_| {})
        .unwrap()
        .store;
    let words: serde_json::Value = serde_json::from_str(&python(
        "whole_word.py",
        &[
            "words".to_string(),
            path_str(&minilm()),
            path_str(&file),
            "64".to_string(),
        ],
    ))
    .unwrap();
    let new_word = words["new_word"].as_array().unwrap();
    assert_eq!(new_word.len(), store.len());
    for (i, want) in new_word.iter().enumerate() {
        let want: Vec<bool> = want.as_array().unwrap().iter().map(|v| v == 1).collect();
        assert_eq!(store.word_starts(i), want, "line {}: {:?}", i + 1, cola[i]);
    }

    let masking = Masking::for_tokenizer(0.15, &tokenizer, 30522)
        .unwrap()
        .with_whole_words(true);
    let (mut chosen, mut masked) = (Vec::new(), Vec::new());
    let (mut words_seen, mut words_chosen) = (0usize, 0usize);
    let (mut as_mask, mut as_random, mut kept, mut pieces) = (0usize, 0usize, 0usize, 0usize);
    for i in 0..store.len() {
        let row = store.row(i);
        let starts = store.word_starts(i);
        let (ids, labels) =
            masking.mask_row_in_words(&row, row.len(), &starts, &mut Masking::row_generator(42, i));
        let hit: Vec<bool> = labels.iter().map(|&l| l != IGNORE_INDEX).collect();
        chosen.push(
            hit.iter()
                .zip(&starts)
                .map(|(&h, &s)| u8::from(h && s))
                .collect::<Vec<_>>(),
        );
        words_seen += starts.iter().filter(|&&s| s).count();
        words_chosen += hit.iter().zip(&starts).filter(|(&h, &s)| h && s).count();
        for j in 0..row.len() {
            if hit[j] {
                pieces += 1;
                assert_eq!(labels[j], row[j]);
                if ids[j] == masking.mask_id {
                    as_mask += 1;
                } else if ids[j] == row[j] {
                    kept += 1;
                } else {
                    as_random += 1;
                }
            }
        }
        masked.push(hit);
    }
    let request = dir.path().join("chosen.json");
    std::fs::write(
        &request,
        serde_json::json!({"word_ids": words["word_ids"], "chosen": chosen}).to_string(),
    )
    .unwrap();
    let expanded: Vec<Vec<u8>> = serde_json::from_str(&python(
        "whole_word.py",
        &["expand".to_string(), path_str(&request)],
    ))
    .unwrap();
    for (i, (want, ours)) in expanded.iter().zip(&masked).enumerate() {
        let want: Vec<bool> = want.iter().map(|&v| v == 1).collect();
        assert_eq!(*ours, want, "line {}: {:?}", i + 1, cola[i]);
    }
    let share = words_chosen as f64 / words_seen as f64;
    let pct = |n: usize| 100.0 * n as f64 / pieces as f64;
    println!(
        "{words_seen} words, {:.2}% chosen; {pieces} pieces masked: {:.2}% [MASK], {:.2}% random, \
         {:.2}% kept",
        100.0 * share,
        pct(as_mask),
        pct(as_random),
        pct(kept)
    );
    assert!((share - 0.15).abs() < 0.015, "{share}");
    assert!((pct(as_mask) - 80.0).abs() < 3.0);
    assert!((pct(as_random) - 10.0).abs() < 2.5);
    assert!(
        pieces > words_chosen,
        "some chosen words have several pieces"
    );
}
