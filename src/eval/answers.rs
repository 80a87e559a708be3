//! From span logits back to answers, as Hugging Face's `postprocess_qa_predictions`
//! (`utils_qa.py`) does it: in every window of an example, the `n_best` highest start and end
//! logits are paired; a pair counts when both ends lie in the context, the end is not before
//! the start and the span is at most `max_answer_len` tokens; the best `n_best` pairs over all
//! windows of the example, by start + end logit, become its candidates, with softmax
//! probabilities over them. With SQuAD v2 the null answer (`[CLS]`, the lowest null score over
//! the windows) competes: the best non-null answer is kept only when it beats the null score
//! by more than `null_threshold`. Checked against a Python port in `tests/question_answering.rs`.

use std::fmt;

use crate::data::squad::{features, QaExample, QaFeature};
use crate::data::tokenizer::BertTokenizer;
use crate::data::tokenizer::Padding;
use crate::data::EncodedSet;
use crate::model::BertForQuestionAnswering;
use crate::runtime::display::{Html, Rich, Table};
use crate::runtime::precision::Precision;

/// How answers are chosen; the defaults are run_qa's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnswerSettings {
    pub n_best: usize,
    pub max_answer_len: usize,
    /// SQuAD v2: questions may have no answer.
    pub with_no_answer: bool,
    pub null_threshold: f64,
}

impl Default for AnswerSettings {
    fn default() -> Self {
        AnswerSettings {
            n_best: 20,
            max_answer_len: 30,
            with_no_answer: false,
            null_threshold: 0.0,
        }
    }
}

/// One candidate answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub text: String,
    /// Character span in the context (`(0, 0)` for the null answer).
    pub span: (usize, usize),
    pub start_logit: f64,
    pub end_logit: f64,
    pub probability: f64,
}

/// An example's answer and its candidates, best first.
#[derive(Debug, Clone, PartialEq)]
pub struct QaPrediction {
    pub id: String,
    /// The answer (`""` for "no answer" under SQuAD v2).
    pub text: String,
    pub candidates: Vec<Candidate>,
    /// SQuAD v2: the null score minus the best non-null answer's score.
    pub null_score_diff: Option<f64>,
}

/// A question-answering model's answers to `examples`: each cut into windows of at most
/// `max_len` tokens (never more than the model's positions) overlapping by `stride`, run in
/// order without gradients (fp32), and post-processed with `settings`. What
/// `predict --question` and `predict --file` print, and the notebook's last cells show.
pub fn answer_questions(
    model: &BertForQuestionAnswering,
    tokenizer: &BertTokenizer,
    examples: &[QaExample],
    max_len: usize,
    stride: usize,
    settings: AnswerSettings,
) -> anyhow::Result<Vec<QaPrediction>> {
    let max_len = max_len.min(model.config.max_tokens() as usize);
    let feats = features(tokenizer, examples, max_len, stride)?;
    let set = EncodedSet::windows(&feats, tokenizer.pad_id, max_len, Padding::Longest);
    let scored = super::evaluate(model, &set, 16, Precision::Fp32)?;
    let (starts, ends) = scored.span_logits();
    postprocess(examples, &feats, &starts, &ends, settings)
}

/// Answers for `examples` from the logits of their `features` (`start_logits[f]` and
/// `end_logits[f]` cover feature `f`'s tokens; longer rows, with padding, are read only as far
/// as the feature's tokens).
pub fn postprocess(
    examples: &[QaExample],
    features: &[QaFeature],
    start_logits: &[Vec<f32>],
    end_logits: &[Vec<f32>],
    settings: AnswerSettings,
) -> anyhow::Result<Vec<QaPrediction>> {
    if start_logits.len() != features.len() || end_logits.len() != features.len() {
        anyhow::bail!(
            "{} features but {} start and {} end logit rows",
            features.len(),
            start_logits.len(),
            end_logits.len()
        );
    }
    let mut by_example: Vec<Vec<usize>> = vec![Vec::new(); examples.len()];
    for (f, feature) in features.iter().enumerate() {
        by_example
            .get_mut(feature.example)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "feature {f} names example {}, which is not given",
                    feature.example
                )
            })?
            .push(f);
    }
    Ok(examples
        .iter()
        .zip(&by_example)
        .map(|(example, feature_ids)| {
            answer(
                example,
                feature_ids,
                features,
                start_logits,
                end_logits,
                settings,
            )
        })
        .collect())
}

/// Indices of the `n` largest values, largest first.
fn top(values: &[f32], n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(b.cmp(&a)));
    order.truncate(n);
    order
}

struct Scored {
    span: (usize, usize),
    score: f64,
    start_logit: f64,
    end_logit: f64,
}

fn answer(
    example: &QaExample,
    feature_ids: &[usize],
    features: &[QaFeature],
    start_logits: &[Vec<f32>],
    end_logits: &[Vec<f32>],
    s: AnswerSettings,
) -> QaPrediction {
    let mut null: Option<Scored> = None;
    let mut found: Vec<Scored> = Vec::new();
    for &f in feature_ids {
        let feature = &features[f];
        let n = feature.offsets.len();
        let (starts, ends) = (
            &start_logits[f][..n.min(start_logits[f].len())],
            &end_logits[f][..n.min(end_logits[f].len())],
        );
        if starts.is_empty() || ends.is_empty() {
            continue;
        }
        let null_score = f64::from(starts[0]) + f64::from(ends[0]);
        if null.as_ref().is_none_or(|x| x.score > null_score) {
            null = Some(Scored {
                span: (0, 0),
                score: null_score,
                start_logit: f64::from(starts[0]),
                end_logit: f64::from(ends[0]),
            });
        }
        for &i in &top(starts, s.n_best) {
            for &j in &top(ends, s.n_best) {
                let (Some(a), Some(b)) = (feature.offsets[i], feature.offsets[j]) else {
                    continue;
                };
                if j < i || j - i + 1 > s.max_answer_len {
                    continue;
                }
                found.push(Scored {
                    span: (a.0, b.1),
                    score: f64::from(starts[i]) + f64::from(ends[j]),
                    start_logit: f64::from(starts[i]),
                    end_logit: f64::from(ends[j]),
                });
            }
        }
    }
    let null_score = null.as_ref().map(|n| n.score);
    if s.with_no_answer {
        if let Some(n) = &null {
            found.push(Scored { ..*n });
        }
    }
    // Stable: among equal scores the earlier candidate stays first, as Python's sorted.
    found.sort_by(|a, b| b.score.total_cmp(&a.score));
    found.truncate(s.n_best);
    if s.with_no_answer {
        if let Some(n) = null.filter(|_| !found.iter().any(|c| c.span == (0, 0))) {
            found.push(n);
        }
    }
    let text_of = |span: (usize, usize)| -> String {
        example
            .context
            .chars()
            .skip(span.0)
            .take(span.1.saturating_sub(span.0))
            .collect()
    };
    let mut texts: Vec<String> = found.iter().map(|c| text_of(c.span)).collect();
    if found.is_empty() || (found.len() == 1 && texts[0].is_empty()) {
        found.insert(
            0,
            Scored {
                span: (0, 0),
                score: 0.0,
                start_logit: 0.0,
                end_logit: 0.0,
            },
        );
        texts.insert(0, "empty".into());
    }
    let max = found
        .iter()
        .map(|c| c.score)
        .fold(f64::NEG_INFINITY, f64::max);
    let exp: Vec<f64> = found.iter().map(|c| (c.score - max).exp()).collect();
    let sum: f64 = exp.iter().sum();
    let candidates: Vec<Candidate> = found
        .iter()
        .zip(texts)
        .zip(&exp)
        .map(|((c, text), e)| Candidate {
            text,
            span: c.span,
            start_logit: c.start_logit,
            end_logit: c.end_logit,
            probability: e / sum,
        })
        .collect();
    let (text, null_score_diff) = if s.with_no_answer {
        let best = candidates
            .iter()
            .find(|c| !c.text.is_empty())
            .unwrap_or(&candidates[0]);
        let diff = null_score.unwrap_or(0.0) - best.start_logit - best.end_logit;
        let text = if diff > s.null_threshold {
            String::new()
        } else {
            best.text.clone()
        };
        (text, Some(diff))
    } else {
        (candidates[0].text.clone(), None)
    };
    QaPrediction {
        id: example.id.clone(),
        text,
        candidates,
        null_score_diff,
    }
}

impl QaPrediction {
    fn table(&self) -> Table {
        let mut table = Table::new(
            format!("{}: {:?}", self.id, self.text),
            &[
                "answer",
                "characters",
                "probability",
                "start logit",
                "end logit",
            ],
        );
        for c in self.candidates.iter().take(5) {
            table.push_row([
                c.text.clone(),
                format!("{}..{}", c.span.0, c.span.1),
                format!("{:.4}", c.probability),
                format!("{:.3}", c.start_logit),
                format!("{:.3}", c.end_logit),
            ]);
        }
        table
    }
}

impl fmt::Display for QaPrediction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.table())
    }
}

impl Rich for QaPrediction {
    fn html(&self) -> Option<Html> {
        self.table().html()
    }
}

crate::impl_evcxr_display!(QaPrediction);
