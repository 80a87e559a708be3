//! [`evaluate`]: a model run over a set in order, without dropout or gradients, and the
//! [`Evaluation`] it returns (logits, predictions, mean loss, accuracy, MCC overall and per
//! batch as the tutorial prints them).

use std::fmt;

use anyhow::{bail, Result};
use tch::{Device, Kind, Tensor};

use super::metrics::{accuracy, matthews, ConfusionMatrix};
use crate::data::{EncodedSet, Sampler};
use crate::model::BertForSequenceClassification;
use crate::runtime::precision::Precision;

/// A model's outputs over a set, in set order, with the batch boundaries used.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// `[n][num_labels]` logits.
    pub logits: Vec<Vec<f32>>,
    pub preds: Vec<i64>,
    pub labels: Vec<i64>,
    pub batch_size: usize,
    /// Mean cross-entropy over the batches (as the tutorial averages it).
    pub loss: f64,
    /// Wall-clock seconds the pass took.
    pub seconds: f64,
}

/// Runs the model over `set` in order, without dropout or gradients, and scores it: the
/// predictions, the mean loss, the time it took. bf16 autocast for the forward pass when
/// `precision` asks for it.
///
/// No autograd state is recorded; logits and losses stay on the device until the set is done
/// and then come back to the host in one copy each.
pub fn evaluate(
    model: &BertForSequenceClassification,
    set: &EncodedSet,
    batch_size: usize,
    precision: Precision,
) -> Result<Evaluation> {
    let started = std::time::Instant::now();
    let device = model.vs.device();
    let logits = tch::no_grad(|| -> Result<Vec<Tensor>> {
        set.batches(batch_size, Sampler::Sequential, device)
            .iter()
            .map(|batch| {
                let _autocast = precision.autocast(device)?;
                Ok(model.logits(&batch.inputs, false))
            })
            .collect()
    })?;
    let mut scored = Evaluation::new(&logits, &set.labels, batch_size)?;
    scored.seconds = started.elapsed().as_secs_f64();
    Ok(scored)
}

impl Evaluation {
    /// Scores the logits of consecutive evaluation batches (of `batch_size` rows, the last
    /// one possibly shorter) against `labels`: the loss is the mean of the batches'
    /// cross-entropies, as the tutorial averages it. One copy to the host for the lot.
    pub fn new(batch_logits: &[Tensor], labels: &[i64], batch_size: usize) -> Result<Self> {
        let rows: i64 = batch_logits.iter().map(|l| l.size()[0]).sum();
        if rows as usize != labels.len() {
            bail!("{rows} rows of logits for {} labels", labels.len());
        }
        if batch_logits.is_empty() {
            return Ok(Evaluation {
                logits: Vec::new(),
                preds: Vec::new(),
                labels: Vec::new(),
                batch_size,
                loss: 0.0,
                seconds: 0.0,
            });
        }
        let device = batch_logits[0].device();
        let mut start = 0;
        let losses: Vec<Tensor> = batch_logits
            .iter()
            .map(|l| {
                let n = l.size()[0] as usize;
                let y = Tensor::from_slice(&labels[start..start + n]).to_device(device);
                start += n;
                l.to_kind(Kind::Float).cross_entropy_for_logits(&y)
            })
            .collect();
        let loss = Tensor::stack(&losses, 0)
            .mean(Kind::Double)
            .double_value(&[]);
        let all = Tensor::cat(batch_logits, 0)
            .to_kind(Kind::Float)
            .to_device(Device::Cpu);
        let preds: Vec<i64> = Vec::try_from(all.argmax(1, false))?;
        let logits = (0..all.size()[0])
            .map(|i| Vec::<f32>::try_from(all.get(i)))
            .collect::<Result<_, _>>()?;
        Ok(Evaluation {
            logits,
            preds,
            labels: labels.to_vec(),
            batch_size,
            loss,
            seconds: 0.0,
        })
    }

    pub fn accuracy(&self) -> f64 {
        accuracy(&self.preds, &self.labels)
    }

    /// MCC over the whole set: the number CoLA results are quoted by.
    pub fn mcc(&self) -> f64 {
        matthews(&self.preds, &self.labels)
    }

    /// MCC of each evaluation batch (small batches often score 0.0: one class only).
    pub fn per_batch_mcc(&self) -> Vec<f64> {
        self.preds
            .chunks(self.batch_size.max(1))
            .zip(self.labels.chunks(self.batch_size.max(1)))
            .map(|(p, l)| matthews(p, l))
            .collect()
    }

    pub fn confusion(&self) -> ConfusionMatrix {
        let k = self.logits.first().map_or(2, Vec::len).max(2);
        ConfusionMatrix::new(&self.preds, &self.labels, k)
    }
}

impl fmt::Display for Evaluation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let per_batch: Vec<String> = self
            .per_batch_mcc()
            .iter()
            .map(|m| format!("{m:.3}"))
            .collect();
        writeln!(f, "MCC per batch: [{}]", per_batch.join(", "))?;
        writeln!(f, "Accuracy: {:.3}", self.accuracy())?;
        write!(f, "MCC: {:.3}", self.mcc())
    }
}
