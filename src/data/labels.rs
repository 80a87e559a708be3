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
}

impl Labels {
    pub fn len(&self) -> usize {
        match self {
            Labels::Classes(v) => v.len(),
            Labels::Values(v) => v.len(),
            Labels::MultiHot(v) => v.len(),
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
            Labels::Values(_) => return Vec::new(),
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
        }
    }

    /// The labels of `rows` as the loss takes them (see `model::heads::loss`): int64 `[n]`
    /// class ids, float32 `[n]` values, or float32 `[n, num_labels]` indicators. On the CPU.
    pub fn tensor(&self, rows: &[usize]) -> Tensor {
        match self.subset(rows) {
            Labels::Classes(v) => Tensor::from_slice(&v),
            Labels::Values(v) => Tensor::from_slice(&v),
            Labels::MultiHot(v) => {
                let width = v.first().map_or(0, Vec::len) as i64;
                let flat: Vec<f32> = v.concat();
                Tensor::from_slice(&flat).reshape([v.len() as i64, width])
            }
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
            Labels::Values(_) => None,
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
