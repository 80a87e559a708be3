//! Question answering as a reader checks it: one example's context cut into the windows the
//! model reads (`--max-len` tokens with the question, overlapping by the stride), the overlap
//! shaded and the answer marked, with the answer's first and last token in each window; and a
//! predicted answer shown in its context.

use std::fmt;

use anyhow::Result;

use crate::data::squad::{features, QaExample};
use crate::data::tokenizer::BertTokenizer;
use crate::eval::QaPrediction;
use crate::runtime::display::{escape, Html, Rich, Table};

/// One window of a context.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowSpan {
    /// Tokens in the window: `[CLS]`, the question, `[SEP]`, its part of the context, `[SEP]`.
    pub tokens: usize,
    /// The characters of the context it covers.
    pub chars: (usize, usize),
    /// The answer's first and last token in the window (0 and 0, `[CLS]`, when the window does
    /// not hold all of it), with those tokens' pieces.
    pub start: i64,
    pub end: i64,
    pub pieces: (String, String),
}

/// An example and its windows.
#[derive(Debug, Clone)]
pub struct QaWindows {
    pub example: QaExample,
    pub max_len: usize,
    pub stride: usize,
    pub windows: Vec<WindowSpan>,
}

/// The windows of `example` as training and prediction cut it (see
/// [`squad::features`](crate::data::squad::features)).
pub fn qa_windows(
    tokenizer: &BertTokenizer,
    example: &QaExample,
    max_len: usize,
    stride: usize,
) -> Result<QaWindows> {
    let feats = features(tokenizer, std::slice::from_ref(example), max_len, stride)?;
    let windows = feats
        .iter()
        .map(|f| {
            let context: Vec<(usize, usize)> = f.offsets.iter().flatten().copied().collect();
            let chars = match (context.first(), context.last()) {
                (Some(a), Some(b)) => (a.0, b.1),
                _ => (0, 0),
            };
            let piece = |i: i64| tokenizer.convert_ids_to_tokens(&[f.ids[i as usize]])[0].clone();
            WindowSpan {
                tokens: f.ids.len(),
                chars,
                start: f.start,
                end: f.end,
                pieces: (piece(f.start), piece(f.end)),
            }
        })
        .collect();
    Ok(QaWindows {
        example: example.clone(),
        max_len,
        stride,
        windows,
    })
}

impl QaWindows {
    fn table(&self) -> Table {
        let mut table = Table::new(
            format!(
                "{} windows of at most {} tokens, overlapping by {} tokens: {:?}",
                self.windows.len(),
                self.max_len,
                self.stride,
                self.example.question
            ),
            &[
                "window",
                "tokens",
                "context characters",
                "answer tokens",
                "pieces",
            ],
        );
        for (i, w) in self.windows.iter().enumerate() {
            let (answer, pieces) = if w.start == 0 {
                (
                    "0, 0 ([CLS]: not in this window)".to_string(),
                    String::new(),
                )
            } else {
                (
                    format!("{}..={}", w.start, w.end),
                    format!("{} .. {}", w.pieces.0, w.pieces.1),
                )
            };
            table.push_row([
                i.to_string(),
                w.tokens.to_string(),
                format!("{}..{}", w.chars.0, w.chars.1),
                answer,
                pieces,
            ]);
        }
        table
    }
}

impl fmt::Display for QaWindows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.table())
    }
}

impl Rich for QaWindows {
    /// The table, then each window's part of the context: the characters the previous window
    /// also covers shaded, the gold answer marked.
    fn html(&self) -> Option<Html> {
        let chars: Vec<char> = self.example.context.chars().collect();
        let answer = self
            .example
            .answers
            .first()
            .map(|a| (a.start, a.start + a.text.chars().count()));
        let mut html = String::from("<div>");
        html.push_str(&self.table().html()?.0);
        let mut previous_end = 0;
        for (i, w) in self.windows.iter().enumerate() {
            let (a, b) = (w.chars.0.min(chars.len()), w.chars.1.min(chars.len()));
            html.push_str(&format!("<p style=\"margin:4px 0\"><b>window {i}</b>: "));
            let mut at = a;
            while at < b {
                let overlap = i > 0 && at < previous_end;
                let in_answer = answer.is_some_and(|(s, e)| at >= s && at < e);
                // The run of characters that share both properties.
                let mut stop = at + 1;
                while stop < b
                    && (i > 0 && stop < previous_end) == overlap
                    && answer.is_some_and(|(s, e)| stop >= s && stop < e) == in_answer
                {
                    stop += 1;
                }
                let text = escape(&chars[at..stop].iter().collect::<String>());
                let text = if in_answer {
                    format!("<mark>{text}</mark>")
                } else {
                    text
                };
                if overlap {
                    html.push_str(&format!(
                        "<span style=\"background:#e4e4e4\" title=\"also in window {}\">{text}</span>",
                        i - 1
                    ));
                } else {
                    html.push_str(&text);
                }
                at = stop;
            }
            html.push_str("</p>");
            previous_end = b;
        }
        html.push_str("</div>");
        Some(Html(html))
    }
}

crate::impl_evcxr_display!(QaWindows);

/// A question's predicted answers shown in its context.
#[derive(Debug, Clone)]
pub struct AnswerInContext {
    pub question: String,
    pub context: String,
    pub prediction: QaPrediction,
}

/// `prediction` (for `example`) with its best answer highlighted in the context.
pub fn answer_in_context(example: &QaExample, prediction: &QaPrediction) -> AnswerInContext {
    AnswerInContext {
        question: example.question.clone(),
        context: example.context.clone(),
        prediction: prediction.clone(),
    }
}

impl fmt::Display for AnswerInContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Q: {}\nA: {:?}", self.question, self.prediction.text)?;
        write!(f, "{}", self.prediction)
    }
}

impl Rich for AnswerInContext {
    fn html(&self) -> Option<Html> {
        let chars: Vec<char> = self.context.chars().collect();
        let mut html = format!("<div><p><b>Q:</b> {}</p><p>", escape(&self.question));
        match self.prediction.candidates.first() {
            Some(best) if best.span.1 > best.span.0 => {
                let (s, e) = (best.span.0.min(chars.len()), best.span.1.min(chars.len()));
                let part = |r: std::ops::Range<usize>| escape(&chars[r].iter().collect::<String>());
                html.push_str(&format!(
                    "{}<mark title=\"probability {:.3}\"><b>{}</b></mark>{}",
                    part(0..s),
                    best.probability,
                    part(s..e),
                    part(e..chars.len())
                ));
            }
            _ => html.push_str(&escape(&self.context)),
        }
        html.push_str("</p>");
        html.push_str(&self.prediction.html()?.0);
        html.push_str("</div>");
        Some(Html(html))
    }
}

crate::impl_evcxr_display!(AnswerInContext);
