//! Masking for masked-LM training measured on a real corpus (CoLA's 8,551 training sentences,
//! about 80,000 candidate tokens): the chosen fraction and the 80/10/10 split as
//! `DataCollatorForLanguageModeling` makes them, specials and padding never chosen, labels only
//! where a token was chosen, masks that follow from the seed and the row, and the bad
//! probabilities refused with the flag's name.

mod common;

use bert_finetune::data::cola::{Cola, Split};
use bert_finetune::data::masking::{Masked, Masking};
use bert_finetune::data::tokenizer::Padding;
use common::*;

fn corpus() -> (Vec<Vec<i64>>, Vec<usize>, Masking) {
    let tokenizer = bert_finetune::model::pretrained::load_tokenizer(minilm()).unwrap();
    let cola =
        Cola::load_split(bert_finetune::runtime::settings::cola_dir(), Split::Train).unwrap();
    let sentences = cola.sentences();
    let encoded = tokenizer
        .encode_batch(&sentences, 64, Padding::Fixed)
        .unwrap();
    let rows = Vec::<Vec<i64>>::try_from(&encoded.input_ids).unwrap();
    let lengths = Vec::<i64>::try_from(encoded.attention_mask.sum_dim_intlist(
        [1i64].as_slice(),
        false,
        tch::Kind::Int64,
    ))
    .unwrap()
    .into_iter()
    .map(|n| n as usize)
    .collect();
    let masking = Masking::for_tokenizer(0.15, &tokenizer, 30522).unwrap();
    (rows, lengths, masking)
}

#[test]
fn masking_chooses_15_percent_and_splits_them_80_10_10() {
    let (rows, lengths, masking) = corpus();
    assert_eq!(masking.mask_id, 103);
    assert_eq!(
        masking.never,
        [0, 100, 101, 102, 103],
        "[PAD] [UNK] [CLS] [SEP] [MASK]"
    );
    let Masked { input_ids, labels } = masking.mask(&rows, &lengths, 42);
    let (mut candidates, mut chosen, mut as_mask, mut kept, mut random) = (0, 0, 0, 0, 0);
    for (i, row) in rows.iter().enumerate() {
        for (j, &id) in row.iter().enumerate() {
            let special = masking.never.contains(&id) || j >= lengths[i];
            if special {
                assert_eq!(
                    labels[i][j], -100,
                    "a special or padding position was chosen"
                );
                assert_eq!(input_ids[i][j], id);
                continue;
            }
            candidates += 1;
            if labels[i][j] == -100 {
                assert_eq!(input_ids[i][j], id, "a position not chosen was changed");
                continue;
            }
            assert_eq!(labels[i][j], id, "the label is the original id");
            chosen += 1;
            match input_ids[i][j] {
                103 => as_mask += 1,
                same if same == id => kept += 1,
                _ => random += 1,
            }
        }
    }
    let fraction = chosen as f64 / candidates as f64;
    let share = |n: usize| n as f64 / chosen as f64;
    println!(
        "{candidates} candidate tokens, {:.4} chosen; of those {:.4} [MASK], {:.4} random, {:.4} kept",
        fraction,
        share(as_mask),
        share(random),
        share(kept)
    );
    assert!(candidates > 75_000, "{candidates}");
    // Tolerances are about four standard deviations of these counts.
    assert!((fraction - 0.15).abs() < 0.005, "{fraction}");
    assert!((share(as_mask) - 0.8).abs() < 0.015, "{}", share(as_mask));
    assert!((share(random) - 0.1).abs() < 0.012, "{}", share(random));
    assert!((share(kept) - 0.1).abs() < 0.012, "{}", share(kept));
}

#[test]
fn masks_follow_from_the_seed_and_the_row() {
    let (rows, lengths, masking) = corpus();
    let (rows, lengths) = (&rows[..200], &lengths[..200]);
    let draw = |seed| masking.mask(rows, lengths, seed);
    assert_eq!(draw(42), draw(42), "the same seed draws the same masks");
    assert_ne!(
        draw(42).labels,
        draw(43).labels,
        "another seed draws other masks"
    );
    // A row's mask depends on its index and the seed, not on the rows beside it.
    let (ids, labels) = masking.mask_row(&rows[0], lengths[0], &mut Masking::row_generator(42, 0));
    assert_eq!(ids, draw(42).input_ids[0]);
    assert_eq!(labels, draw(42).labels[0]);
    let alone = masking.mask(&rows[5..6], &lengths[5..6], 42);
    let (_, as_first) = masking.mask_row(&rows[5], lengths[5], &mut Masking::row_generator(42, 0));
    assert_eq!(alone.labels[0], as_first, "a row alone is drawn as row 0");
}

#[test]
fn a_probability_outside_zero_and_one_is_refused_with_the_flag() {
    for p in [0.0, 1.0, -0.1, 1.5, f64::NAN] {
        let err = Masking::new(p, 103, 30522, vec![]).unwrap_err().to_string();
        assert!(err.contains("--mlm-probability"), "{p}: {err}");
    }
    let err = Masking::new(0.15, 40000, 30522, vec![])
        .unwrap_err()
        .to_string();
    assert!(err.contains("[MASK] id 40000"), "{err}");
}
