//! Entity-level scores of a tagger, exactly as `seqeval` computes them in its default
//! (conlleval-compatible) mode, which is what Hugging Face's `run_ner.py` reports: tags are
//! read as `B-TYPE`, `I-TYPE`, `E-TYPE`, `S-TYPE` or `O`, chunks are cut by seqeval's
//! `start_of_chunk` / `end_of_chunk` rules (so an `I-` after `O` starts an entity, a change
//! of type inside a run ends one and starts the next), and an entity counts as found only when
//! its type, first and last word all match. Checked against the `seqeval` package on the same
//! tag sequences in `tests/entities.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::runtime::display::{Html, Rich, Table};

/// One entity: its type and the words it spans (inclusive), within sentence `sentence`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Entity {
    pub kind: String,
    pub sentence: usize,
    pub first: usize,
    pub last: usize,
}

/// seqeval's reading of one tag: the prefix letter and the type (`_` when there is none).
fn split_tag(tag: &str) -> (char, String) {
    let mut chars = tag.chars();
    let prefix = chars.next().unwrap_or('O');
    let rest = chars.as_str();
    // `chunk[1:].split('-', maxsplit=1)[-1] or '_'`
    let kind = match rest.split_once('-') {
        Some((_, after)) => after,
        None => rest,
    };
    let kind = if kind.is_empty() { "_" } else { kind };
    (prefix, kind.to_string())
}

fn end_of_chunk(prev_tag: char, tag: char, prev_type: &str, kind: &str) -> bool {
    matches!(prev_tag, 'E' | 'S')
        || (matches!(prev_tag, 'B' | 'I') && matches!(tag, 'B' | 'S' | 'O'))
        || (prev_tag != 'O' && prev_tag != '.' && prev_type != kind)
}

fn start_of_chunk(prev_tag: char, tag: char, prev_type: &str, kind: &str) -> bool {
    matches!(tag, 'B' | 'S')
        || (matches!(prev_tag, 'E' | 'S' | 'O') && matches!(tag, 'E' | 'I'))
        || (tag != 'O' && tag != '.' && prev_type != kind)
}

/// The entities of one sentence's tags, in order (seqeval's `get_entities`).
pub fn entities(tags: &[impl AsRef<str>], sentence: usize) -> Vec<Entity> {
    let mut out = Vec::new();
    let (mut prev_tag, mut prev_type) = ('O', String::new());
    let mut begin = 0;
    let end = std::iter::once("O");
    for (i, tag) in tags.iter().map(AsRef::as_ref).chain(end).enumerate() {
        let (tag, kind) = split_tag(tag);
        if end_of_chunk(prev_tag, tag, &prev_type, &kind) {
            out.push(Entity {
                kind: prev_type.clone(),
                sentence,
                first: begin,
                last: i - 1,
            });
        }
        if start_of_chunk(prev_tag, tag, &prev_type, &kind) {
            begin = i;
        }
        prev_tag = tag;
        prev_type = kind;
    }
    out
}

/// Precision, recall, F1 and support (true entities) of one entity type, or of all.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EntityScore {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

impl EntityScore {
    /// From counts, with seqeval's zero-division rule (0 where a denominator is 0).
    fn of(found: usize, predicted: usize, support: usize) -> Self {
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let (precision, recall) = (ratio(found, predicted), ratio(found, support));
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        EntityScore {
            precision,
            recall,
            f1,
            support,
        }
    }
}

/// A tagger's scores over a set: per entity type, overall (seqeval's micro average, what
/// `run_ner.py` reports as `overall_*`) and token accuracy.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityReport {
    pub by_type: BTreeMap<String, EntityScore>,
    pub overall: EntityScore,
    /// Share of words whose predicted tag equals the true one (seqeval's `accuracy_score`).
    pub accuracy: f64,
}

impl EntityReport {
    /// Scores predicted tags against the true ones, sentence by sentence. A sentence whose
    /// two tag lists differ in length is an error naming it.
    pub fn new<S: AsRef<str>>(truth: &[Vec<S>], predicted: &[Vec<S>]) -> anyhow::Result<Self> {
        if truth.len() != predicted.len() {
            anyhow::bail!(
                "{} sentences of true tags but {} of predicted tags",
                truth.len(),
                predicted.len()
            );
        }
        let (mut true_set, mut pred_set) = (BTreeSet::new(), BTreeSet::new());
        let (mut words, mut right) = (0usize, 0usize);
        for (s, (t, p)) in truth.iter().zip(predicted).enumerate() {
            if t.len() != p.len() {
                anyhow::bail!(
                    "sentence {s}: {} true tags but {} predicted tags",
                    t.len(),
                    p.len()
                );
            }
            words += t.len();
            right += t
                .iter()
                .zip(p)
                .filter(|(a, b)| a.as_ref() == b.as_ref())
                .count();
            true_set.extend(entities(t, s));
            pred_set.extend(entities(p, s));
        }
        // Every type either side names, as seqeval reports them (a predicted-only type has
        // support 0 and scores 0).
        let kinds: BTreeSet<&String> = true_set.iter().chain(&pred_set).map(|e| &e.kind).collect();
        let count =
            |set: &BTreeSet<Entity>, kind: &str| set.iter().filter(|e| e.kind == kind).count();
        let by_type = kinds
            .into_iter()
            .map(|kind| {
                let found = true_set
                    .iter()
                    .filter(|e| &e.kind == kind && pred_set.contains(*e))
                    .count();
                let score = EntityScore::of(found, count(&pred_set, kind), count(&true_set, kind));
                (kind.clone(), score)
            })
            .collect();
        let found = true_set.intersection(&pred_set).count();
        Ok(EntityReport {
            by_type,
            overall: EntityScore::of(found, pred_set.len(), true_set.len()),
            accuracy: if words == 0 {
                0.0
            } else {
                right as f64 / words as f64
            },
        })
    }

    /// Per type and overall, as a table.
    pub fn table(&self) -> Table {
        let mut table = Table::new(
            format!("Entities (token accuracy {:.4})", self.accuracy),
            &["entity", "precision", "recall", "F1", "support"],
        );
        for (kind, s) in &self.by_type {
            table.push_row(row(kind, s));
        }
        table.push_row(row("overall (micro)", &self.overall));
        table
    }
}

fn row(name: &str, s: &EntityScore) -> [String; 5] {
    [
        name.to_string(),
        format!("{:.4}", s.precision),
        format!("{:.4}", s.recall),
        format!("{:.4}", s.f1),
        s.support.to_string(),
    ]
}

impl fmt::Display for EntityReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.table())
    }
}

impl Rich for EntityReport {
    fn html(&self) -> Option<Html> {
        self.table().html()
    }
}

crate::impl_evcxr_display!(EntityReport);
