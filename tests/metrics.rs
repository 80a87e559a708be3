//! Every metric against scikit-learn / scipy on the same predictions: random cases drawn with a
//! seed (several class counts, skewed and missing classes, ties in regression scores).

mod common;

use bert_finetune::eval::metrics::{
    accuracy, average_ranks, binary_f1, matthews, micro_f1, pearson, spearman, subset_accuracy,
    ConfusionMatrix,
};
use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const TOLERANCE: f64 = 1e-10;

fn close(ours: f64, theirs: &Value, what: &str) {
    let theirs = theirs
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: {theirs}"));
    assert!(
        (ours - theirs).abs() <= TOLERANCE,
        "{what}: ours {ours}, scikit-learn/scipy {theirs}"
    );
}

#[test]
fn metrics_match_scikit_learn_and_scipy() {
    let mut rng = StdRng::seed_from_u64(18);
    let mut classes = Vec::new();
    for (k, n) in [(2, 40), (2, 7), (3, 60), (5, 33), (4, 12)] {
        // Skewed towards class 0, and class k-1 never predicted in some cases.
        let labels: Vec<i64> = (0..n).map(|_| rng.random_range(0..k) as i64).collect();
        let top = if n % 2 == 0 { k } else { k - 1 };
        let preds: Vec<i64> = labels
            .iter()
            .map(|&l| {
                if rng.random_bool(0.6) {
                    l.min(top as i64 - 1)
                } else {
                    rng.random_range(0..top) as i64
                }
            })
            .collect();
        classes.push((k, preds, labels));
    }
    let mut regression = Vec::new();
    for n in [10usize, 57] {
        let x: Vec<f64> = (0..n)
            .map(|_| rng.random_range(0..6) as f64 * 0.5)
            .collect(); // ties
        let y: Vec<f64> = x.iter().map(|v| v + rng.random_range(-1.0..1.0)).collect();
        regression.push((x, y));
    }
    let mut multilabel = Vec::new();
    for (rows, k) in [(20usize, 3usize), (9, 5)] {
        let draw = |rng: &mut StdRng| -> Vec<Vec<bool>> {
            (0..rows)
                .map(|_| (0..k).map(|_| rng.random_bool(0.4)).collect())
                .collect()
        };
        multilabel.push((draw(&mut rng), draw(&mut rng)));
    }

    let dir = tmp();
    let file = dir.path().join("cases.json");
    let bits = |m: &Vec<Vec<bool>>| -> Vec<Vec<u8>> {
        m.iter()
            .map(|r| r.iter().map(|&b| b as u8).collect())
            .collect()
    };
    let cases = json!({
        "classes": classes.iter().map(|(k, p, l)| json!({"k": k, "preds": p, "labels": l})).collect::<Vec<_>>(),
        "regression": regression.iter().map(|(x, y)| json!({"x": x, "y": y})).collect::<Vec<_>>(),
        "multilabel": multilabel.iter().map(|(p, l)| json!({"preds": bits(p), "labels": bits(l)})).collect::<Vec<_>>(),
    });
    std::fs::write(&file, cases.to_string()).unwrap();
    let reference: Value = serde_json::from_str(&python("metrics.py", &[path_str(&file)])).unwrap();

    for (i, (k, preds, labels)) in classes.iter().enumerate() {
        let theirs = &reference["classes"][i];
        let cm = ConfusionMatrix::new(preds, labels, *k);
        for (c, s) in cm.per_class().iter().enumerate() {
            close(
                s.precision,
                &theirs["precision"][c],
                &format!("case {i} precision[{c}]"),
            );
            close(
                s.recall,
                &theirs["recall"][c],
                &format!("case {i} recall[{c}]"),
            );
            close(s.f1, &theirs["f1"][c], &format!("case {i} f1[{c}]"));
            assert_eq!(Some(s.support as u64), theirs["support"][c].as_u64());
        }
        let m = cm.macro_average();
        close(
            m.precision,
            &theirs["macro"][0],
            &format!("case {i} macro precision"),
        );
        close(
            m.recall,
            &theirs["macro"][1],
            &format!("case {i} macro recall"),
        );
        close(m.f1, &theirs["macro"][2], &format!("case {i} macro f1"));
        close(
            accuracy(preds, labels),
            &theirs["accuracy"],
            &format!("case {i} accuracy"),
        );
        close(
            matthews(preds, labels),
            &theirs["mcc"],
            &format!("case {i} mcc"),
        );
        if *k == 2 {
            close(
                binary_f1(preds, labels),
                &theirs["binary_f1"],
                &format!("case {i} f1"),
            );
        }
    }
    for (i, (x, y)) in regression.iter().enumerate() {
        let theirs = &reference["regression"][i];
        close(
            pearson(x, y),
            &theirs["pearson"],
            &format!("case {i} pearson"),
        );
        close(
            spearman(x, y),
            &theirs["spearman"],
            &format!("case {i} spearman"),
        );
    }
    for (i, (p, l)) in multilabel.iter().enumerate() {
        let theirs = &reference["multilabel"][i];
        close(
            micro_f1(p, l),
            &theirs["micro_f1"],
            &format!("case {i} micro f1"),
        );
        close(
            subset_accuracy(p, l),
            &theirs["subset_accuracy"],
            &format!("case {i} subset accuracy"),
        );
    }
    assert_eq!(average_ranks(&[3.0, 1.0, 3.0, 2.0]), [3.5, 1.0, 3.5, 2.0]);
}
