//! Named entities from a token classifier, as transformers' token-classification pipeline
//! gives them with `aggregation_strategy="simple"`: each word piece (specials left out) takes
//! its most probable tag and that probability; neighbouring pieces join one entity while their
//! type stays the same and no `B-` starts a new one; an entity's score is the mean of its
//! pieces' and its span runs from its first piece's first character to its last piece's last;
//! `O` is dropped. Checked against the pipeline in `tests/heads.rs`.
//!
//! A text longer than the model's positions is read in consecutive windows, so every word gets
//! a tag (the pipeline cuts it off unless given a stride); an entity is not joined across two
//! windows.

use std::fmt;

use anyhow::Result;
use tch::{Kind, Tensor};

use super::token_classifier::BertForTokenClassification;
use crate::data::tokenizer::BertTokenizer;
use crate::runtime::display::{escape, Html, Rich, Table};

/// One entity found in a text.
#[derive(Debug, Clone, PartialEq)]
pub struct EntitySpan {
    /// The type (`PER` for `B-PER` / `I-PER`; a tag without a prefix is its own type).
    pub kind: String,
    /// Mean probability of its pieces' tags.
    pub score: f64,
    /// Character span in the text.
    pub start: usize,
    pub end: usize,
    /// The text it covers.
    pub word: String,
}

/// A text and the entities found in it; shows as the text with each entity highlighted.
#[derive(Debug, Clone, PartialEq)]
pub struct TaggedText {
    pub text: String,
    pub entities: Vec<EntitySpan>,
}

/// `B-X` → ("B", "X"), `I-X` → ("I", "X"), anything else → ("I", itself), as the pipeline.
fn bi_and_type(tag: &str) -> (char, &str) {
    if let Some(kind) = tag.strip_prefix("B-") {
        ('B', kind)
    } else if let Some(kind) = tag.strip_prefix("I-") {
        ('I', kind)
    } else {
        ('I', tag)
    }
}

/// One piece: its tag, that tag's probability and its character span.
struct Piece {
    tag: String,
    score: f64,
    start: usize,
    end: usize,
}

/// How many pieces fit between `[CLS]` and `[SEP]` in the tagger's positions.
fn window_room(model: &BertForTokenClassification) -> usize {
    (model.config.max_tokens() as usize)
        .saturating_sub(2)
        .max(1)
}

/// The tagger's float logits, `[pieces + 2, tags]` on its device, for one window read as
/// `[CLS] pieces [SEP]`, in eval mode without gradients.
fn window_logits(
    model: &BertForTokenClassification,
    tokenizer: &BertTokenizer,
    pieces: impl Iterator<Item = i64>,
) -> Tensor {
    let row: Vec<i64> = std::iter::once(tokenizer.cls_id)
        .chain(pieces)
        .chain(std::iter::once(tokenizer.sep_id))
        .collect();
    let n = row.len() as i64;
    let input = Tensor::from_slice(&row)
        .reshape([1, n])
        .to_device(model.vs.device());
    tch::no_grad(|| {
        model
            .forward(&input, &input.ones_like(), &input.zeros_like(), false)
            .to_kind(Kind::Float)
            .squeeze_dim(0)
    })
}

/// The entities of every text, in order. Runs in eval mode without gradients.
pub fn predict_entities(
    model: &BertForTokenClassification,
    tokenizer: &BertTokenizer,
    texts: &[impl AsRef<str>],
) -> Result<Vec<TaggedText>> {
    let window = window_room(model);
    texts
        .iter()
        .map(|text| {
            let text = text.as_ref();
            let (ids, offsets) = tokenizer.encode_with_offsets(text)?;
            let mut pieces = Vec::new();
            let mut entities = Vec::new();
            for part in ids.chunks(window).zip(offsets.chunks(window)) {
                let (ids, offsets) = part;
                let probs = tch::no_grad(|| {
                    window_logits(model, tokenizer, ids.iter().copied())
                        .softmax(-1, Kind::Float)
                        .to_device(tch::Device::Cpu)
                });
                let (best, tag) = probs.max_dim(-1, false);
                let best: Vec<f32> = Vec::try_from(best.reshape([-1]))?;
                let tag: Vec<i64> = Vec::try_from(tag.reshape([-1]))?;
                pieces.clear();
                for (i, &(start, end)) in offsets.iter().enumerate() {
                    pieces.push(Piece {
                        tag: model.config.label_name(tag[i + 1] as usize),
                        score: f64::from(best[i + 1]),
                        start,
                        end,
                    });
                }
                entities.extend(group(&pieces, text));
            }
            Ok(TaggedText {
                text: text.to_string(),
                entities,
            })
        })
        .collect()
}

/// The pipeline's `group_entities` and `group_sub_entities`, then `O` dropped.
fn group(pieces: &[Piece], text: &str) -> Vec<EntitySpan> {
    let mut groups: Vec<&[Piece]> = Vec::new();
    let mut first = 0;
    for i in 1..pieces.len() {
        let (bi, kind) = bi_and_type(&pieces[i].tag);
        let (_, last_kind) = bi_and_type(&pieces[i - 1].tag);
        if !(kind == last_kind && bi != 'B') {
            groups.push(&pieces[first..i]);
            first = i;
        }
    }
    if !pieces.is_empty() {
        groups.push(&pieces[first..]);
    }
    groups
        .into_iter()
        .filter_map(|g| {
            let kind = g[0]
                .tag
                .split_once('-')
                .map_or(g[0].tag.as_str(), |(_, k)| k);
            if kind == "O" || g[0].tag == "O" {
                return None;
            }
            let (start, end) = (g[0].start, g[g.len() - 1].end);
            Some(EntitySpan {
                kind: kind.to_string(),
                score: g.iter().map(|p| p.score).sum::<f64>() / g.len() as f64,
                start,
                end,
                word: text.chars().skip(start).take(end - start).collect(),
            })
        })
        .collect()
}

impl TaggedText {
    fn table(&self) -> Table {
        let mut table = Table::new(
            self.text.clone(),
            &["entity", "type", "score", "characters"],
        );
        for e in &self.entities {
            table.push_row([
                e.word.clone(),
                e.kind.clone(),
                format!("{:.3}", e.score),
                format!("{}..{}", e.start, e.end),
            ]);
        }
        table
    }
}

impl fmt::Display for TaggedText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.table())
    }
}

impl Rich for TaggedText {
    /// The text with each entity marked and labelled with its type, then the table.
    fn html(&self) -> Option<Html> {
        let chars: Vec<char> = self.text.chars().collect();
        let mut html = String::from("<div><p style=\"line-height:2\">");
        let mut at = 0;
        for e in &self.entities {
            let before: String = chars[at.min(e.start)..e.start.min(chars.len())]
                .iter()
                .collect();
            html.push_str(&escape(&before));
            html.push_str(&format!(
                "<mark title=\"{} {:.3}\">{} <b style=\"font-size:0.75em\">{}</b></mark>",
                escape(&e.kind),
                e.score,
                escape(&e.word),
                escape(&e.kind)
            ));
            at = e.end.min(chars.len());
        }
        let rest: String = chars[at..].iter().collect();
        html.push_str(&escape(&rest));
        html.push_str("</p>");
        if let Some(Html(table)) = self.table().html() {
            html.push_str(&table);
        }
        html.push_str("</div>");
        Some(Html(html))
    }
}

crate::impl_evcxr_display!(TaggedText);

/// Several texts with their entities, shown one after the other (a notebook cell displays one
/// value, so a list of [`TaggedText`] is wrapped in this).
#[derive(Debug, Clone, PartialEq)]
pub struct TaggedTexts(pub Vec<TaggedText>);

impl fmt::Display for TaggedTexts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for text in &self.0 {
            writeln!(f, "{text}")?;
        }
        Ok(())
    }
}

impl Rich for TaggedTexts {
    fn html(&self) -> Option<Html> {
        let parts: Vec<String> = self
            .0
            .iter()
            .filter_map(|t| t.html())
            .map(|h| h.0)
            .collect();
        Some(Html(format!("<div>{}</div>", parts.join(""))))
    }
}

crate::impl_evcxr_display!(TaggedTexts);

/// Each word's predicted tag, for sentences given as words (what run_ner's predictions file
/// holds): the tag of a word's first piece. A sentence longer than the model's positions is
/// read in consecutive windows cut between words, so every word gets a tag; a word that
/// tokenizes to nothing gets `O`.
pub fn predict_word_tags(
    model: &BertForTokenClassification,
    tokenizer: &BertTokenizer,
    sentences: &[Vec<String>],
) -> Result<Vec<Vec<String>>> {
    let room = window_room(model);
    sentences
        .iter()
        .map(|words| {
            let mut tags = vec!["O".to_string(); words.len()];
            if words.is_empty() {
                return Ok(tags);
            }
            let (ids, word_ids) = tokenizer.encode_words(words)?;
            // The pieces between [CLS] and [SEP], with their words.
            let pieces: Vec<(i64, u32)> = ids
                .iter()
                .zip(&word_ids)
                .filter_map(|(&id, w)| w.map(|w| (id, w)))
                .collect();
            let mut start = 0;
            let mut previous = None;
            while start < pieces.len() {
                let mut stop = (start + room).min(pieces.len());
                // Cut between words: back off to the first piece of the word cut in two.
                while stop < pieces.len()
                    && stop > start + 1
                    && pieces[stop].1 == pieces[stop - 1].1
                {
                    stop -= 1;
                }
                let best = window_logits(model, tokenizer, pieces[start..stop].iter().map(|p| p.0))
                    .argmax(-1, false)
                    .to_device(tch::Device::Cpu);
                let best: Vec<i64> = Vec::try_from(best.reshape([-1]))?;
                for (k, &(_, word)) in pieces[start..stop].iter().enumerate() {
                    if previous != Some(word) {
                        tags[word as usize] = model.config.label_name(best[k + 1] as usize);
                    }
                    previous = Some(word);
                }
                start = stop;
            }
            Ok(tags)
        })
        .collect()
}
