//! New texts through a trained model: the tutorial's closing step, for every problem type.
//! [`predict`] returns each row's [`Prediction`] (the class and its probability; the value of
//! a regression; every label over the threshold of a multi-label model), as a table that
//! displays in a notebook; [`classify_sentences`] is the tutorial's one-call form.
//!
//! `eval::evaluate` scores a labelled set for metrics; this takes bare texts, as a user types
//! them or as a file holds them.

use std::fmt;

use anyhow::{bail, Result};
use tch::{Device, Kind, Tensor};

use crate::data::tokenizer::{pad_rows_with_types, BertTokenizer, Padding};
use crate::data::ProblemType;
use crate::data::MULTI_LABEL_THRESHOLD;
use crate::model::BertForSequenceClassification;
use crate::runtime::display::{Html, Rich, Table};

/// Rows scored per forward pass.
const BATCH: usize = 64;

/// One row's prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The class (single-label), the labels over the threshold joined by `,`
    /// (multi-label), or the value printed (regression).
    pub label: String,
    /// The class's probability; the value itself for a regression; for multi-label, the
    /// probability of each label in id order (see `probabilities`) and here the highest.
    pub score: f64,
    /// Per-label probabilities (multi-label), else empty.
    pub probabilities: Vec<f64>,
}

/// The predictions of a list of texts (or pairs), in order.
#[derive(Debug, Clone)]
pub struct Predictions {
    pub problem_type: ProblemType,
    pub texts: Vec<String>,
    pub rows: Vec<Prediction>,
}

/// Each text's (or pair's) prediction by `model`, in batches, without dropout or gradients.
/// `second` holds the second text of each pair for a pair model.
pub fn predict(
    model: &BertForSequenceClassification,
    tokenizer: &BertTokenizer,
    first: &[impl AsRef<str>],
    second: Option<&[String]>,
) -> Result<Predictions> {
    let problem = model.config.problem_type()?;
    let max_len = 512.min(model.config.max_tokens() as usize);
    let device = model.vs.device();
    if let Some(second) = second {
        if second.len() != first.len() {
            bail!(
                "{} first texts but {} second texts",
                first.len(),
                second.len()
            );
        }
    }
    let mut rows = Vec::with_capacity(first.len());
    for start in (0..first.len()).step_by(BATCH) {
        let end = (start + BATCH).min(first.len());
        let (ids, types): (Vec<Vec<i64>>, Option<Vec<Vec<i64>>>) = match second {
            Some(second) => {
                let (ids, types) = tokenizer
                    .encode_pairs(&first[start..end], &second[start..end], max_len)?
                    .into_iter()
                    .unzip();
                (ids, Some(types))
            }
            None => (
                tokenizer.encode_truncated(&first[start..end], max_len)?,
                None,
            ),
        };
        let id_rows: Vec<&[i64]> = ids.iter().map(Vec::as_slice).collect();
        let type_rows: Option<Vec<&[i64]>> = types
            .as_ref()
            .map(|t| t.iter().map(Vec::as_slice).collect());
        let inputs = pad_rows_with_types(
            &id_rows,
            type_rows.as_deref(),
            tokenizer.pad_id,
            max_len,
            Padding::Longest,
        )
        .to_device(device);
        let logits = tch::no_grad(|| model.logits(&inputs, false))
            .to_kind(Kind::Float)
            .to_device(Device::Cpu);
        rows.extend(read_predictions(model, problem, &logits)?);
    }
    let texts = match second {
        Some(second) => first
            .iter()
            .zip(second)
            .map(|(a, b)| format!("{} | {b}", a.as_ref()))
            .collect(),
        None => first.iter().map(|s| s.as_ref().to_string()).collect(),
    };
    Ok(Predictions {
        problem_type: problem,
        texts,
        rows,
    })
}

fn read_predictions(
    model: &BertForSequenceClassification,
    problem: ProblemType,
    logits: &Tensor,
) -> Result<Vec<Prediction>> {
    let n = logits.size()[0];
    let mut out = Vec::with_capacity(n as usize);
    match problem {
        ProblemType::SingleLabelClassification => {
            let probs = logits.softmax(-1, Kind::Float);
            for i in 0..n {
                let row = Vec::<f64>::try_from(probs.get(i).to_kind(Kind::Double))?;
                let (class, p) =
                    row.iter()
                        .enumerate()
                        .fold((0, f64::MIN), |b, (j, &p)| if p > b.1 { (j, p) } else { b });
                out.push(Prediction {
                    label: model.config.label_name(class),
                    score: p,
                    probabilities: Vec::new(),
                });
            }
        }
        ProblemType::Regression => {
            for i in 0..n {
                let v = logits.double_value(&[i, 0]);
                out.push(Prediction {
                    label: format!("{v:.4}"),
                    score: v,
                    probabilities: Vec::new(),
                });
            }
        }
        ProblemType::TokenClassification
        | ProblemType::QuestionAnswering
        | ProblemType::MaskedLanguageModeling => {
            bail!("a sequence classifier does not tag tokens, find answer spans or fill masks")
        }
        ProblemType::MultiLabelClassification => {
            let probs = logits.sigmoid();
            for i in 0..n {
                let row = Vec::<f64>::try_from(probs.get(i).to_kind(Kind::Double))?;
                let names: Vec<String> = row
                    .iter()
                    .enumerate()
                    .filter(|(_, &p)| p >= MULTI_LABEL_THRESHOLD)
                    .map(|(j, _)| model.config.label_name(j))
                    .collect();
                out.push(Prediction {
                    label: names.join(","),
                    score: row.iter().copied().fold(0.0, f64::max),
                    probabilities: row,
                });
            }
        }
    }
    Ok(out)
}

impl Predictions {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The predictions as a table: text, label (or value, or labels) and score.
    pub fn table(&self) -> Table {
        let (label, score) = match self.problem_type {
            ProblemType::SingleLabelClassification => ("label", "probability"),
            ProblemType::Regression => ("value", ""),
            ProblemType::MultiLabelClassification => ("labels", "highest probability"),
            ProblemType::TokenClassification => ("tags", ""),
            ProblemType::QuestionAnswering => ("answer", ""),
            ProblemType::MaskedLanguageModeling => ("tokens", ""),
        };
        let mut headers = vec!["sentence", label];
        if !score.is_empty() {
            headers.push(score);
        }
        let mut table = Table::new("Predictions", &headers);
        for (text, p) in self.texts.iter().zip(&self.rows) {
            let mut row = vec![text.clone(), p.label.clone()];
            if !score.is_empty() {
                row.push(format!("{:.3}", p.score));
            }
            table.push_row(row);
        }
        table
    }
}

impl fmt::Display for Predictions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.table())
    }
}

impl Rich for Predictions {
    fn html(&self) -> Option<Html> {
        self.table().html()
    }
}

crate::impl_evcxr_display!(Predictions);

/// Each sentence's predicted class and its probability (the tutorial's last cell).
pub fn classify_sentences(
    model: &BertForSequenceClassification,
    tokenizer: &BertTokenizer,
    sentences: &[impl AsRef<str>],
) -> Result<Table> {
    Ok(predict(model, tokenizer, sentences, None)?.table())
}
