//! SQuAD's exact match and F1, with the official scripts' normalisation (`evaluate-v1.1.py`,
//! `evaluate-v2.0.py`): lower-case, drop ASCII punctuation, drop the articles a/an/the as
//! whole words, collapse whitespace; a question's score is the best over its gold answers, and
//! the set's is the mean, in percent. SQuAD v2 adds questions without an answer: their gold is
//! the empty string, an empty prediction is then exact, and the figures are also given for the
//! answerable (`HasAns`) and unanswerable (`NoAns`) questions apart. Checked against the
//! official functions (in Python, in the venv) in `tests/entities.rs`.

use std::collections::HashMap;
use std::fmt;

use crate::runtime::display::{Html, Rich, Table};

/// Python's `string.punctuation`.
const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// Python's `re` word characters (`\w` on `str`): letters, digits and the underscore.
fn word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The official `normalize_answer`.
pub fn normalize_answer(text: &str) -> String {
    let lower = text.to_lowercase();
    let no_punct: Vec<char> = lower
        .chars()
        .filter(|c| !PUNCTUATION.contains(*c))
        .collect();
    // `re.sub(r'\b(a|an|the)\b', ' ', text)`: an article between word boundaries.
    let mut out = String::with_capacity(no_punct.len());
    let mut i = 0;
    while i < no_punct.len() {
        let boundary_before = i == 0 || !word_char(no_punct[i - 1]);
        let article = ["the", "an", "a"].iter().find_map(|a| {
            let n = a.chars().count();
            let matches = no_punct.len() >= i + n
                && no_punct[i..i + n].iter().copied().eq(a.chars())
                && no_punct.get(i + n).is_none_or(|c| !word_char(*c));
            matches.then_some(n)
        });
        match article.filter(|_| boundary_before) {
            Some(n) => {
                out.push(' ');
                i += n;
            }
            None => {
                out.push(no_punct[i]);
                i += 1;
            }
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// 1.0 when the normalised prediction equals the normalised answer.
pub fn exact_match(prediction: &str, answer: &str) -> f64 {
    f64::from(u8::from(
        normalize_answer(prediction) == normalize_answer(answer),
    ))
}

/// Which official script's rules: they differ only where a text normalises to nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SquadVersion {
    /// `evaluate-v1.1.py`: every gold answer counts; F1 is 0 without a common token.
    V1,
    /// `evaluate-v2.0.py`: gold answers that normalise to nothing are dropped (none left: the
    /// question has no answer, gold `""`); F1 of two empty texts is 1.
    V2,
}

/// Token-overlap F1 of the normalised texts, by `version`'s rule for empty texts.
pub fn f1(prediction: &str, answer: &str, version: SquadVersion) -> f64 {
    let (p, a) = (normalize_answer(prediction), normalize_answer(answer));
    let p: Vec<&str> = p.split_whitespace().collect();
    let a: Vec<&str> = a.split_whitespace().collect();
    if version == SquadVersion::V2 && (p.is_empty() || a.is_empty()) {
        return f64::from(u8::from(p == a));
    }
    let mut counts: HashMap<&str, i64> = HashMap::new();
    for t in &a {
        *counts.entry(t).or_default() += 1;
    }
    let mut same = 0;
    for t in &p {
        if let Some(c) = counts.get_mut(t).filter(|c| **c > 0) {
            *c -= 1;
            same += 1;
        }
    }
    if same == 0 {
        return 0.0;
    }
    let precision = same as f64 / p.len() as f64;
    let recall = same as f64 / a.len() as f64;
    2.0 * precision * recall / (precision + recall)
}

/// One question's scores (each 0 to 1) and whether it has an answer.
#[derive(Debug, Clone)]
pub struct Scored {
    pub exact: f64,
    pub f1: f64,
    pub has_answer: bool,
}

/// Scores one prediction (`""` for "no answer") against a question's gold answers as the
/// official script of `version` does: the best over the answers.
pub fn score_question(
    prediction: &str,
    answers: &[impl AsRef<str>],
    version: SquadVersion,
) -> Scored {
    let mut gold: Vec<&str> = answers.iter().map(AsRef::as_ref).collect();
    if version == SquadVersion::V2 {
        gold.retain(|a| !normalize_answer(a).is_empty());
    }
    let has_answer = !gold.is_empty();
    if !has_answer {
        gold.push("");
    }
    let exact = gold
        .iter()
        .map(|g| exact_match(prediction, g))
        .fold(0.0, f64::max);
    let f1 = gold
        .iter()
        .map(|g| f1(prediction, g, version))
        .fold(0.0, f64::max);
    Scored {
        exact,
        f1,
        has_answer,
    }
}

/// A set's figures, in percent as the official scripts print them.
#[derive(Debug, Clone, PartialEq)]
pub struct SquadScores {
    pub exact: f64,
    pub f1: f64,
    pub total: usize,
    /// Answerable questions alone (SQuAD v2's `HasAns_*`): `(exact, f1, count)`.
    pub has_answer: Option<(f64, f64, usize)>,
    /// Unanswerable questions alone (`NoAns_*`).
    pub no_answer: Option<(f64, f64, usize)>,
}

impl SquadScores {
    /// Scores predictions against gold answers, question by question (same order), by the
    /// rules of `version`.
    pub fn new<A: AsRef<str>>(
        predictions: &[impl AsRef<str>],
        answers: &[Vec<A>],
        version: SquadVersion,
    ) -> anyhow::Result<Self> {
        if predictions.len() != answers.len() {
            anyhow::bail!(
                "{} predictions for {} questions",
                predictions.len(),
                answers.len()
            );
        }
        let scored: Vec<Scored> = predictions
            .iter()
            .zip(answers)
            .map(|(p, a)| score_question(p.as_ref(), a, version))
            .collect();
        let mean = |part: &[&Scored]| -> Option<(f64, f64, usize)> {
            (!part.is_empty()).then(|| {
                let n = part.len() as f64;
                (
                    100.0 * part.iter().map(|s| s.exact).sum::<f64>() / n,
                    100.0 * part.iter().map(|s| s.f1).sum::<f64>() / n,
                    part.len(),
                )
            })
        };
        let all: Vec<&Scored> = scored.iter().collect();
        let (exact, f1, total) = mean(&all).unwrap_or((0.0, 0.0, 0));
        let has: Vec<&Scored> = scored.iter().filter(|s| s.has_answer).collect();
        let no: Vec<&Scored> = scored.iter().filter(|s| !s.has_answer).collect();
        Ok(SquadScores {
            exact,
            f1,
            total,
            has_answer: if no.is_empty() { None } else { mean(&has) },
            no_answer: mean(&no),
        })
    }

    fn table(&self) -> Table {
        let mut table = Table::new("SQuAD", &["questions", "exact match", "F1", "count"]);
        table.push_row([
            "all".into(),
            format!("{:.2}", self.exact),
            format!("{:.2}", self.f1),
            self.total.to_string(),
        ]);
        for (name, part) in [
            ("with an answer", self.has_answer),
            ("without", self.no_answer),
        ] {
            if let Some((e, f, n)) = part {
                table.push_row([
                    name.into(),
                    format!("{e:.2}"),
                    format!("{f:.2}"),
                    n.to_string(),
                ]);
            }
        }
        table
    }
}

impl fmt::Display for SquadScores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.table())
    }
}

impl Rich for SquadScores {
    fn html(&self) -> Option<Html> {
        self.table().html()
    }
}

crate::impl_evcxr_display!(SquadScores);
