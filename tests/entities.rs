//! The tagger and question-answering metrics against their references in the venv: entity
//! scores against the `seqeval` package (what `run_ner.py` reports), SQuAD exact match and F1
//! against the official scripts' functions (`tests/python/entities.py`), on the same cases.

mod common;

use bert_finetune::eval::entities::entities;
use bert_finetune::eval::squad::normalize_answer;
use bert_finetune::eval::{EntityReport, SquadScores, SquadVersion};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

fn tags(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

/// Hand-written sequences with the awkward cases, then random ones over a mixed tag set.
/// True and predicted tags of a set of sentences.
type Case = (Vec<Vec<String>>, Vec<Vec<String>>);

fn tag_cases() -> Vec<Case> {
    let mut cases = vec![
        (
            vec![tags("B-PER I-PER O B-LOC"), tags("O B-ORG I-ORG I-ORG O")],
            vec![tags("B-PER I-PER O B-LOC"), tags("O B-ORG I-ORG O O")],
        ),
        // An I- after O starts an entity; a change of type inside a run ends one and starts
        // the next; B-X B-X are two entities; a run at the very end closes.
        (
            vec![tags(
                "O I-PER I-PER O B-LOC I-ORG I-ORG B-MISC B-MISC I-MISC",
            )],
            vec![tags(
                "O B-PER I-PER O B-LOC B-ORG I-ORG B-MISC I-MISC I-MISC",
            )],
        ),
        // IOBES, and tags without a type.
        (
            vec![tags("S-PER O B-LOC E-LOC E-LOC O B I O S-MISC")],
            vec![tags("S-PER O B-LOC I-LOC E-LOC O B I O O")],
        ),
        // Nothing predicted; nothing true.
        (vec![tags("B-PER O O")], vec![tags("O O O")]),
        (vec![tags("O O")], vec![tags("B-LOC O")]),
    ];
    let pool = [
        "O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "E-LOC", "S-MISC", "I-MISC", "B-ORG",
        "I-ORG",
    ];
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..40 {
        let sentences = rng.random_range(1..6);
        let (mut truth, mut pred) = (Vec::new(), Vec::new());
        for _ in 0..sentences {
            let n = rng.random_range(1..14);
            let t: Vec<String> = (0..n)
                .map(|_| pool[rng.random_range(0..pool.len())].to_string())
                .collect();
            // Predictions mostly agree, so there are true positives to count.
            let p = t
                .iter()
                .map(|tag| {
                    if rng.random_bool(0.7) {
                        tag.clone()
                    } else {
                        pool[rng.random_range(0..pool.len())].to_string()
                    }
                })
                .collect();
            truth.push(t);
            pred.push(p);
        }
        cases.push((truth, pred));
    }
    cases
}

fn close(a: f64, b: &Value, what: &str) {
    let b = b.as_f64().unwrap();
    assert!((a - b).abs() < 1e-12, "{what}: ours {a}, reference {b}");
}

#[test]
fn entity_scores_equal_seqeval_and_squad_scores_the_official_scripts() {
    let cases = tag_cases();
    let texts = [
        "The Eiffel Tower",
        "  an  apple, a pear and THE banana!  ",
        "théâtre d'Orsay — the 1920s",
        "a",
        "the-the",
        "Anathema",
        "",
        "A.B.C. (a) [an] {the}",
        "Ça va? Über_the_top",
    ];
    let squad = json!([
        {"predictions": ["Denver Broncos", "the Broncos", "1920s", "", "a"],
         "answers": [["Denver Broncos", "The Broncos"], ["Carolina Panthers"],
                     ["in the 1920s", "1920s"], ["Paris"], ["the"]]},
        {"predictions": ["", "Santa Clara", "", "Levi's Stadium in Santa Clara"],
         "answers": [[], ["Santa Clara, California"], [""], ["Levi's Stadium"]]},
    ]);
    let input = json!({
        "seqeval": cases.iter().map(|(t, p)| json!({"truth": t, "pred": p})).collect::<Vec<_>>(),
        "texts": texts,
        "squad": squad,
    });
    let dir = common::tmp();
    let file = dir.path().join("cases.json");
    std::fs::write(&file, input.to_string()).unwrap();
    let reference: Value = serde_json::from_str(&common::python("entities.py", &[&file])).unwrap();

    for (i, ((truth, pred), want)) in cases
        .iter()
        .zip(reference["seqeval"].as_array().unwrap())
        .enumerate()
    {
        // Entities of each true sentence: seqeval's (type, first, last).
        for (s, seq) in truth.iter().enumerate() {
            let ours: Vec<Value> = entities(seq, s)
                .into_iter()
                .map(|e| json!([e.kind, e.first, e.last]))
                .collect();
            assert_eq!(
                Value::Array(ours),
                want["entities"][s],
                "case {i} sentence {s}: {seq:?}"
            );
        }
        let report = EntityReport::new(truth, pred).unwrap();
        let by_type = want["by_type"].as_object().unwrap();
        assert_eq!(
            report.by_type.keys().collect::<Vec<_>>(),
            by_type.keys().collect::<Vec<_>>(),
            "case {i}"
        );
        for (kind, score) in &report.by_type {
            let w = &by_type[kind];
            close(
                score.precision,
                &w[0],
                &format!("case {i} {kind} precision"),
            );
            close(score.recall, &w[1], &format!("case {i} {kind} recall"));
            close(score.f1, &w[2], &format!("case {i} {kind} f1"));
            assert_eq!(
                score.support as u64,
                w[3].as_u64().unwrap(),
                "case {i} {kind}"
            );
        }
        let o = &want["overall"];
        close(
            report.overall.precision,
            &o[0],
            &format!("case {i} overall precision"),
        );
        close(
            report.overall.recall,
            &o[1],
            &format!("case {i} overall recall"),
        );
        close(report.overall.f1, &o[2], &format!("case {i} overall f1"));
        close(
            report.accuracy,
            &want["accuracy"],
            &format!("case {i} accuracy"),
        );
    }

    for (text, want) in texts
        .iter()
        .zip(reference["normalized"].as_array().unwrap())
    {
        assert_eq!(normalize_answer(text), want.as_str().unwrap(), "{text:?}");
    }
    for (c, case) in squad.as_array().unwrap().iter().enumerate() {
        let predictions: Vec<String> = serde_json::from_value(case["predictions"].clone()).unwrap();
        let answers: Vec<Vec<String>> = serde_json::from_value(case["answers"].clone()).unwrap();
        // v1.1 never has a question without answers: score the answerable ones only.
        let answerable: Vec<usize> = (0..answers.len())
            .filter(|&i| !answers[i].is_empty())
            .collect();
        if answerable.len() == answers.len() {
            let v1 = SquadScores::new(&predictions, &answers, SquadVersion::V1).unwrap();
            close(v1.exact, &reference["v1"][c]["exact"], "v1 exact");
            close(v1.f1, &reference["v1"][c]["f1"], "v1 f1");
        }
        let v2 = SquadScores::new(&predictions, &answers, SquadVersion::V2).unwrap();
        let want = &reference["v2"][c];
        close(v2.exact, &want["exact"], "v2 exact");
        close(v2.f1, &want["f1"], "v2 f1");
        let no_split = v2.no_answer.is_none();
        for (ours, theirs) in [
            (v2.has_answer, want.get("HasAns")),
            (v2.no_answer, want.get("NoAns")),
        ] {
            match (ours, theirs) {
                (Some((e, f, n)), Some(w)) => {
                    close(e, &w[0], "split exact");
                    close(f, &w[1], "split f1");
                    assert_eq!(n as u64, w[2].as_u64().unwrap());
                }
                (None, None) => {}
                // A set with no unanswerable question reports no split of its own; the v2
                // script's HasAns is then the whole set.
                (None, Some(w)) if no_split => {
                    assert_eq!(w[2].as_u64().unwrap() as usize, answers.len());
                }
                other => panic!("case {c}: split {other:?}"),
            }
        }
    }
}

#[test]
fn tag_lists_of_different_lengths_are_an_error_naming_the_sentence() {
    let err = EntityReport::new(
        &[tags("B-PER O"), tags("O")],
        &[tags("B-PER O"), tags("O O")],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("sentence 1") && err.contains("1 true tags but 2"),
        "{err}"
    );
}
