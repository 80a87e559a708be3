//! [`Labels`]: the targets of a set, in the form its problem type trains on (class ids,
//! values, or 0/1 indicators per label), and their tensor for a batch.

use tch::Tensor;

use super::problem_type::ProblemType;

/// The labels of a set, in the form its problem type trains on.
#[derive(Debug, Clone, PartialEq)]
pub enum Labels {
    /// Class ids, `0..num_labels` (single-label classification).
    Classes(Vec<i64>),
    /// One value per row (regression).
    Values(Vec<f32>),
    /// One 0/1 indicator per label per row (multi-label classification).
    MultiHot(Vec<Vec<f32>>),
    /// A tag id per token of each row, aligned with the row's ids (`[CLS]`, `[SEP]` and a
    /// word's later pieces -100, which no loss or metric reads): token classification.
    Tags(Vec<Vec<i64>>),
    /// The first and last token of each row's answer (`[CLS]`, 0, for none in the window):
    /// extractive question answering.
    Spans(Vec<(i64, i64)>),
    /// The original id at each masked position of each row and -100 everywhere else, aligned
    /// with the row's (masked) ids: masked language modelling. Drawn afresh every epoch (see
    /// [`crate::data::masking`]).
    Tokens(Vec<Vec<i64>>),
    /// Masked language modelling before a pass draws the masks: as many rows, whose labels
    /// ([`Labels::Tokens`]) come with each batch's masks.
    ToMask(usize),
}

impl Labels {
    pub fn len(&self) -> usize {
        match self {
            Labels::Classes(v) => v.len(),
            Labels::Values(v) => v.len(),
            Labels::MultiHot(v) => v.len(),
            Labels::Tags(v) => v.len(),
            Labels::Spans(v) => v.len(),
            Labels::Tokens(v) => v.len(),
            Labels::ToMask(n) => *n,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The problem type these labels train.
    pub fn problem_type(&self) -> ProblemType {
        match self {
            Labels::Classes(_) => ProblemType::SingleLabelClassification,
            Labels::Values(_) => ProblemType::Regression,
            Labels::MultiHot(_) => ProblemType::MultiLabelClassification,
            Labels::Tags(_) => ProblemType::TokenClassification,
            Labels::Spans(_) => ProblemType::QuestionAnswering,
            Labels::Tokens(_) | Labels::ToMask(_) => ProblemType::MaskedLanguageModeling,
        }
    }

    /// Rows per class (single-label) or per label (multi-label) among `width`; empty for
    /// values.
    pub fn counts(&self, width: usize) -> Vec<usize> {
        let mut counts = vec![0; width];
        match self {
            Labels::Classes(v) => {
                for &c in v {
                    if let Some(n) = counts.get_mut(c as usize) {
                        *n += 1;
                    }
                }
            }
            Labels::Values(_) | Labels::Spans(_) | Labels::Tokens(_) | Labels::ToMask(_) => {
                return Vec::new()
            }
            Labels::Tags(v) => {
                for &t in v.iter().flatten() {
                    if let Some(n) = usize::try_from(t).ok().and_then(|t| counts.get_mut(t)) {
                        *n += 1;
                    }
                }
            }
            Labels::MultiHot(v) => {
                for row in v {
                    for (n, &x) in counts.iter_mut().zip(row) {
                        if x >= 0.5 {
                            *n += 1;
                        }
                    }
                }
            }
        }
        counts
    }

    /// The class ids, for single-label classification (`None` otherwise).
    pub fn classes(&self) -> Option<&[i64]> {
        match self {
            Labels::Classes(v) => Some(v),
            _ => None,
        }
    }

    /// The rows at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Labels {
        match self {
            Labels::Classes(v) => Labels::Classes(indices.iter().map(|&i| v[i]).collect()),
            Labels::Values(v) => Labels::Values(indices.iter().map(|&i| v[i]).collect()),
            Labels::MultiHot(v) => {
                Labels::MultiHot(indices.iter().map(|&i| v[i].clone()).collect())
            }
            Labels::Tags(v) => Labels::Tags(indices.iter().map(|&i| v[i].clone()).collect()),
            Labels::Spans(v) => Labels::Spans(indices.iter().map(|&i| v[i]).collect()),
            Labels::Tokens(v) => Labels::Tokens(indices.iter().map(|&i| v[i].clone()).collect()),
            Labels::ToMask(_) => Labels::ToMask(indices.len()),
        }
    }

    /// The labels of `rows` as the loss takes them (see `model::heads::loss`): int64 `[n]`
    /// class ids, float32 `[n]` values, float32 `[n, num_labels]` indicators, int64
    /// `[n, longest row]` tags padded with -100, or int64 `[n, 2]` answer spans. On the CPU.
    pub fn tensor(&self, rows: &[usize]) -> Tensor {
        let width = match self {
            Labels::Tags(v) | Labels::Tokens(v) => {
                rows.iter().map(|&r| v[r].len()).max().unwrap_or(0)
            }
            _ => 0,
        };
        self.tensor_of_width(rows, width)
    }

    /// [`Labels::tensor`], tags padded with -100 to `width` columns (the width of the batch's
    /// inputs, which fixed padding makes wider than the longest row).
    pub fn tensor_of_width(&self, rows: &[usize], width: usize) -> Tensor {
        match self.subset(rows) {
            Labels::Classes(v) => Tensor::from_slice(&v),
            Labels::Values(v) => Tensor::from_slice(&v),
            Labels::MultiHot(v) => {
                let width = v.first().map_or(0, Vec::len) as i64;
                let flat: Vec<f32> = v.concat();
                Tensor::from_slice(&flat).reshape([v.len() as i64, width])
            }
            Labels::Tags(v) | Labels::Tokens(v) => {
                let flat: Vec<i64> = v
                    .iter()
                    .flat_map(|row| {
                        let keep = row.len().min(width);
                        row[..keep].iter().copied().chain(std::iter::repeat_n(
                            super::tagging::IGNORE_INDEX,
                            width - keep,
                        ))
                    })
                    .collect();
                Tensor::from_slice(&flat).reshape([v.len() as i64, width as i64])
            }
            Labels::Spans(v) => {
                let flat: Vec<i64> = v.iter().flat_map(|&(s, e)| [s, e]).collect();
                Tensor::from_slice(&flat).reshape([v.len() as i64, 2])
            }
            // Nothing masked yet: nothing to predict.
            Labels::ToMask(n) => Tensor::full(
                [n as i64, width as i64],
                super::tagging::IGNORE_INDEX,
                (tch::Kind::Int64, tch::Device::Cpu),
            ),
        }
    }

    /// Every row's labels as the indicators multi-label metrics compare (a class id becomes
    /// one set indicator among `width`; a value is not a set of labels: `None`).
    pub fn indicators(&self, width: usize) -> Option<Vec<Vec<bool>>> {
        match self {
            Labels::Classes(v) => Some(
                v.iter()
                    .map(|&c| (0..width).map(|j| j as i64 == c).collect())
                    .collect(),
            ),
            Labels::Values(_)
            | Labels::Tags(_)
            | Labels::Spans(_)
            | Labels::Tokens(_)
            | Labels::ToMask(_) => None,
            Labels::MultiHot(v) => Some(
                v.iter()
                    .map(|row| row.iter().map(|&x| x >= 0.5).collect())
                    .collect(),
            ),
        }
    }
}

impl From<Vec<i64>> for Labels {
    fn from(v: Vec<i64>) -> Self {
        Labels::Classes(v)
    }
}

impl From<&[i64]> for Labels {
    fn from(v: &[i64]) -> Self {
        Labels::Classes(v.to_vec())
    }
}

impl From<&Vec<i64>> for Labels {
    fn from(v: &Vec<i64>) -> Self {
        Labels::Classes(v.clone())
    }
}

impl From<&Labels> for Labels {
    fn from(v: &Labels) -> Self {
        v.clone()
    }
}
