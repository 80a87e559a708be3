//! Token-classification data as a reader checks it before training: sentences word by word
//! with each word's tag under it (entity types in colour), and one sentence's word pieces next
//! to the labels they train on (run_ner's alignment, with the -100 the loss skips).

use std::fmt;

use anyhow::Result;

use crate::data::tagging::{align, ids_of_tags, TaggedSentence, IGNORE_INDEX};
use crate::data::tokenizer::BertTokenizer;
use crate::runtime::display::{escape, Html, Rich, Table};

/// Background colours of entity types, in the order the types first appear.
const PALETTE: [&str; 8] = [
    "#cfe2ff", "#ffe5b4", "#d1f0d1", "#f8d0e0", "#e2d9f3", "#fff3b0", "#d0f0f0", "#eadbc8",
];

/// Sentences shown word by word, each word with its tag under it.
#[derive(Debug, Clone)]
pub struct TaggedSentences {
    pub sentences: Vec<TaggedSentence>,
}

/// The sentences as a notebook shows them (see [`TaggedSentences`]).
pub fn tagged_sentences(sentences: &[TaggedSentence]) -> TaggedSentences {
    TaggedSentences {
        sentences: sentences.to_vec(),
    }
}

/// An entity type's name: `PER` for `B-PER` and `I-PER`; `None` for `O`.
fn kind(tag: &str) -> Option<&str> {
    match tag {
        "O" => None,
        _ => Some(
            tag.strip_prefix("B-")
                .or_else(|| tag.strip_prefix("I-"))
                .unwrap_or(tag),
        ),
    }
}

impl fmt::Display for TaggedSentences {
    /// `word/TAG` for tagged words, the bare word for `O`; a sentence a line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.sentences {
            let words: Vec<String> = s
                .words
                .iter()
                .zip(&s.tags)
                .map(|(w, t)| match kind(t) {
                    None => w.clone(),
                    Some(_) => format!("{w}/{t}"),
                })
                .collect();
            writeln!(f, "{}", words.join(" "))?;
        }
        Ok(())
    }
}

impl Rich for TaggedSentences {
    fn html(&self) -> Option<Html> {
        let mut kinds: Vec<&str> = Vec::new();
        for t in self.sentences.iter().flat_map(|s| &s.tags) {
            if let Some(k) = kind(t) {
                if !kinds.contains(&k) {
                    kinds.push(k);
                }
            }
        }
        let colour = |tag: &str| {
            kind(tag)
                .and_then(|k| kinds.iter().position(|x| *x == k))
                .map(|i| PALETTE[i % PALETTE.len()])
                .unwrap_or("transparent")
        };
        let mut html = String::from("<div>");
        for s in &self.sentences {
            html.push_str("<div style=\"margin:6px 0;line-height:1.3\">");
            for (w, t) in s.words.iter().zip(&s.tags) {
                html.push_str(&format!(
                    "<span style=\"display:inline-block;text-align:center;margin:0 2px;\
                     padding:1px 4px;border-radius:4px;background:{}\">{}<br>\
                     <span style=\"font-size:0.7em;color:#555\">{}</span></span>",
                    colour(t),
                    escape(w),
                    escape(t)
                ));
            }
            html.push_str("</div>");
        }
        html.push_str("</div>");
        Some(Html(html))
    }
}

crate::impl_evcxr_display!(TaggedSentences);

/// One sentence's word pieces as the model trains on them: each piece, the word it comes from
/// and its label (the word's tag on its first piece; -100, which the loss skips, on later
/// pieces and on `[CLS]`/`[SEP]`, unless `label_all_tokens` maps tags for later pieces).
/// `tag_names` are the model's tags in id order; a tag outside them is an error.
pub fn aligned_pieces(
    tokenizer: &BertTokenizer,
    sentence: &TaggedSentence,
    tag_names: &[String],
    max_len: usize,
    label_all_tokens: Option<&[i64]>,
) -> Result<Table> {
    let ids = ids_of_tags(&sentence.tags, tag_names, &sentence.words.join(" "))?;
    let aligned = align(tokenizer, &sentence.words, &ids, max_len, label_all_tokens)?;
    let pieces = tokenizer.convert_ids_to_tokens(&aligned.ids);
    let mut caption = sentence.words.join(" ");
    if aligned.words_cut > 0 {
        caption.push_str(&format!(
            " ({} words cut by max_len {max_len})",
            aligned.words_cut
        ));
    }
    let mut table = Table::new(caption, &["position", "piece", "word", "label", "tag"]);
    for (i, ((piece, word), label)) in pieces
        .iter()
        .zip(&aligned.word_ids)
        .zip(&aligned.labels)
        .enumerate()
    {
        table.push_row([
            i.to_string(),
            piece.clone(),
            word.map(|w| format!("{w}: {}", sentence.words[w as usize]))
                .unwrap_or_else(|| "-".into()),
            label.to_string(),
            if *label == IGNORE_INDEX {
                "(not scored)".into()
            } else {
                tag_names[*label as usize].clone()
            },
        ]);
    }
    Ok(table)
}
