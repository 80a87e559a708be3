//! [`evaluate`]: a model run over a set in order, without dropout or gradients, and the
//! [`Evaluation`] it returns: logits, predictions and labels, the mean loss, and the metrics
//! of the problem type (accuracy and MCC overall and per batch as the tutorial prints them;
//! macro F1; Pearson and Spearman for a regression; micro-F1 and subset accuracy for
//! multi-label).

use std::collections::BTreeMap;
use std::fmt;

use anyhow::{bail, Result};
use tch::{Device, Kind, Tensor};

use super::metrics::{
    accuracy, binary_f1, matthews, micro_f1, pearson, spearman, subset_accuracy, ConfusionMatrix,
};
use crate::data::tagging::IGNORE_INDEX;
use crate::data::{shard, EncodedSet, Labels, Sampler};
use crate::data::{ProblemType, MULTI_LABEL_THRESHOLD};
use crate::model::{heads, TaskModel};
use crate::runtime::display::Table;
use crate::runtime::distributed::ProcessGroup;
use crate::runtime::precision::Precision;

/// A model's outputs over a set, in set order, with the batch boundaries used.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub problem_type: ProblemType,
    /// `[n][num_labels]` logits.
    pub logits: Vec<Vec<f32>>,
    /// The predictions, in the labels' form: the arg-max class, the value, or each label over
    /// [`MULTI_LABEL_THRESHOLD`].
    pub preds: Labels,
    pub labels: Labels,
    pub batch_size: usize,
    /// Mean loss over the batches (as the tutorial averages it), the training loss of the
    /// problem type.
    pub loss: f64,
    /// Wall-clock seconds the pass took.
    pub seconds: f64,
    /// The model's tag names by id (token classification, whose entity metrics read the
    /// `B-`/`I-` prefixes); empty otherwise.
    pub label_names: Vec<String>,
}

/// Runs the model over `set` in order, without dropout or gradients, and scores it: the
/// predictions, the mean loss, the time it took. bf16 autocast for the forward pass when
/// `precision` asks for it.
///
/// No autograd state is recorded; logits and losses stay on the device until the set is done
/// and then come back to the host in one copy each.
pub fn evaluate<M: TaskModel>(
    model: &M,
    set: &EncodedSet,
    batch_size: usize,
    precision: Precision,
) -> Result<Evaluation> {
    let started = std::time::Instant::now();
    unmasked_is_an_error(set)?;
    if let Labels::Tokens(tokens) = &set.labels {
        let (nll, best) = masked_token_scores(model, set, batch_size, precision)?;
        let mut scored =
            Evaluation::of_masked_tokens(&nll, &best, &set.labels, tokens, batch_size)?;
        scored.seconds = started.elapsed().as_secs_f64();
        return Ok(scored);
    }
    let logits = batch_logits(model, set, batch_size, precision)?;
    let mut scored = Evaluation::new(&logits, &set.labels, batch_size)?;
    scored.seconds = started.elapsed().as_secs_f64();
    if matches!(set.labels, Labels::Tags(_)) {
        scored.label_names = model.label_names();
    }
    Ok(scored)
}

/// A masked-LM set is scored on one draw of its masks, which the caller chooses.
fn unmasked_is_an_error(set: &EncodedSet) -> Result<()> {
    if set.masking.is_some() {
        bail!(
            "this masked-LM set has no masks yet: evaluate set.masked(seed), one draw of its \
             masks (Trainer::evaluate uses the run's seed)"
        );
    }
    Ok(())
}

/// The model's logits for `set`'s batches in order (eval mode, no gradients, autocast as
/// `precision` asks), still on the device.
fn batch_logits<M: TaskModel>(
    model: &M,
    set: &EncodedSet,
    batch_size: usize,
    precision: Precision,
) -> Result<Vec<Tensor>> {
    let device = model.var_store().device();
    tch::no_grad(|| {
        set.batches(batch_size, Sampler::Sequential, device)
            .iter()
            .map(|batch| {
                let _autocast = precision.autocast(device)?;
                Ok(model.batch_logits(&batch.inputs, false))
            })
            .collect()
    })
}

/// A masked-LM set scored as it goes: each masked token's loss term and arg-max, in row order
/// (`[m]` float and `[m]` int64, on the host). A batch's logits (`[m, vocab]`, the masked
/// positions only) do not outlive it, so the memory does not grow with the set.
fn masked_token_scores<M: TaskModel>(
    model: &M,
    set: &EncodedSet,
    batch_size: usize,
    precision: Precision,
) -> Result<(Vec<f32>, Vec<i64>)> {
    let device = model.var_store().device();
    let (mut nll, mut best) = (Vec::new(), Vec::new());
    tch::no_grad(|| -> Result<()> {
        for rows in set.batch_rows(batch_size, Sampler::Sequential) {
            let batch = set.batch_of(&rows, device);
            let (logits, labels) = {
                let _autocast = precision.autocast(device)?;
                model.scored_logits(&batch, false)
            };
            let vocab = logits.size().last().copied().unwrap_or(0);
            let logits = logits.to_kind(Kind::Float).reshape([-1, vocab]);
            let labels = labels.reshape([-1]);
            let picked = labels.ne(IGNORE_INDEX).nonzero().squeeze_dim(1);
            let logits = logits.index_select(0, &picked);
            let labels = labels.index_select(0, &picked);
            let terms = logits.cross_entropy_loss::<Tensor>(
                &labels,
                None,
                tch::Reduction::None,
                IGNORE_INDEX,
                0.0,
            );
            nll.extend(Vec::<f32>::try_from(terms.to_device(Device::Cpu))?);
            best.extend(Vec::<i64>::try_from(
                logits.argmax(-1, false).to_device(Device::Cpu),
            )?);
        }
        Ok(())
    })?;
    Ok((nll, best))
}

/// The masked positions of a masked-LM row: where its label is not -100.
fn masked_positions(row: &[i64]) -> impl Iterator<Item = usize> + '_ {
    row.iter()
        .enumerate()
        .filter(|(_, &t)| t != IGNORE_INDEX)
        .map(|(i, _)| i)
}

/// [`evaluate`] shared among the ranks of `group`: each runs the model over its contiguous
/// share of `set` (see [`crate::data::shard`]), the logits are gathered in rank order, and the
/// whole set is scored on every rank from them, in the same batches of `batch_size` as one
/// process scores it.
pub fn evaluate_sharded<M: TaskModel>(
    model: &M,
    set: &EncodedSet,
    batch_size: usize,
    precision: Precision,
    group: &ProcessGroup,
) -> Result<Evaluation> {
    let started = std::time::Instant::now();
    unmasked_is_an_error(set)?;
    let n = set.len();
    if n == 0 {
        return Evaluation::new(&[], &set.labels, batch_size);
    }
    let all: Vec<usize> = (0..n).collect();
    let mine = set.subset(&shard(&all, group.rank(), group.world_size()));
    if let Labels::Tokens(tokens) = &set.labels {
        let (nll, best) = gathered_masked_tokens(model, set, &mine, batch_size, precision, group)?;
        let mut scored =
            Evaluation::of_masked_tokens(&nll, &best, &set.labels, tokens, batch_size)?;
        scored.seconds = started.elapsed().as_secs_f64();
        return Ok(scored);
    }
    if matches!(
        set.labels,
        Labels::Tags(_) | Labels::Spans(_) | Labels::Tokens(_)
    ) {
        let mut scored = gathered_per_token(model, set, &mine, batch_size, precision, group)?;
        scored.seconds = started.elapsed().as_secs_f64();
        if matches!(set.labels, Labels::Tags(_)) {
            scored.label_names = model.label_names();
        }
        return Ok(scored);
    }
    let local = evaluate(model, &mine, batch_size, precision)?;
    let rows: Vec<f32> = local.logits.concat();
    let width = local.width() as i64;
    let logits = Tensor::from_slice(&rows).reshape([mine.len() as i64, width]);
    let gathered = group
        .all_gather(&logits)?
        .reshape([-1, width])
        .narrow(0, 0, n as i64);
    let batches = gathered.split(batch_size.max(1) as i64, 0);
    let mut scored = Evaluation::new(&batches, &set.labels, batch_size)?;
    scored.seconds = started.elapsed().as_secs_f64();
    Ok(scored)
}

/// [`evaluate_sharded`] for a masked-LM set (`mine`: this rank's share): each rank scores its
/// rows' masked tokens, the ranks' lists (padded to the longest) are gathered in rank order in
/// one collective, and the set's tokens are the first of them in that order (a share padded
/// by wrapping around repeats rows from the start, after the set's last row).
fn gathered_masked_tokens<M: TaskModel>(
    model: &M,
    set: &EncodedSet,
    mine: &EncodedSet,
    batch_size: usize,
    precision: Precision,
    group: &ProcessGroup,
) -> Result<(Vec<f32>, Vec<i64>)> {
    let Labels::Tokens(tokens) = &set.labels else {
        bail!("masked tokens are scored for a masked-LM set");
    };
    let (world, n) = (group.world_size(), set.len());
    let all: Vec<usize> = (0..n).collect();
    let counts: Vec<usize> = (0..world)
        .map(|rank| {
            shard(&all, rank, world)
                .iter()
                .map(|&r| masked_positions(&tokens[r]).count())
                .sum()
        })
        .collect();
    let widest = counts.iter().copied().max().unwrap_or(0);
    let (nll, best) = masked_token_scores(model, mine, batch_size, precision)?;
    // Both lists in one float64 tensor (token ids are exact in it), padded to the widest.
    let mut local = vec![0f64; 2 * widest];
    for (i, (l, b)) in nll.iter().zip(&best).enumerate() {
        local[i] = f64::from(*l);
        local[widest + i] = *b as f64;
    }
    let local = Tensor::from_slice(&local)
        .reshape([2, widest as i64])
        .to_device(model.var_store().device());
    let gathered = Vec::<f64>::try_from(
        group
            .all_gather(&local)?
            .to_device(Device::Cpu)
            .reshape([-1]),
    )?;
    let total: usize = tokens.iter().map(|r| masked_positions(r).count()).sum();
    let (mut nll, mut best) = (Vec::with_capacity(total), Vec::with_capacity(total));
    for (rank, count) in counts.iter().enumerate() {
        let base = rank * 2 * widest;
        nll.extend(gathered[base..base + count].iter().map(|&v| v as f32));
        best.extend(
            gathered[base + widest..base + widest + count]
                .iter()
                .map(|&v| v as i64),
        );
    }
    nll.truncate(total);
    best.truncate(total);
    Ok((nll, best))
}

/// [`evaluate_sharded`] for token classification and question answering (`mine`: this rank's
/// share of `set`), whose logits are
/// `[rows, width, k]` with each batch as wide as its longest row: every rank pads its rows'
/// logits to the widest row of the set (0 for tags, whose padding the labels skip; the head's
/// padding logit for spans) so the shares gather as one tensor; the whole set's logits are then
/// cut back into the batches one process makes (consecutive `batch_size` rows, each as wide as
/// the set's padding makes it) and scored as one process scores them.
fn gathered_per_token<M: TaskModel>(
    model: &M,
    set: &EncodedSet,
    mine: &EncodedSet,
    batch_size: usize,
    precision: Precision,
    group: &ProcessGroup,
) -> Result<Evaluation> {
    let n = set.len();
    let batch_size = batch_size.max(1);
    let lengths = set.lengths();
    let widest = set.padded_width(&lengths);
    let pad = match set.labels {
        Labels::Spans(_) => crate::model::question_answering::PADDING_LOGIT,
        _ => 0.0,
    };
    let local = batch_logits(model, mine, batch_size, precision)?
        .into_iter()
        .map(|l| {
            let l = l.to_kind(Kind::Float);
            let (rows, width, k) = l.size3()?;
            let padded = Tensor::full([rows, widest as i64, k], pad, (Kind::Float, l.device()));
            tch::no_grad(|| padded.narrow(1, 0, width).copy_(&l));
            Ok(padded)
        })
        .collect::<Result<Vec<Tensor>>>()?;
    let local = Tensor::cat(&local, 0);
    let k = local.size()[2];
    let gathered = group
        .all_gather(&local)?
        .reshape([-1, widest as i64, k])
        .narrow(0, 0, n as i64);
    let batches: Vec<Tensor> = (0..n)
        .step_by(batch_size)
        .map(|start| {
            let rows = start..(start + batch_size).min(n);
            let width = set.padded_width(&lengths[rows.clone()]);
            gathered
                .narrow(0, start as i64, rows.len() as i64)
                .narrow(1, 0, width as i64)
        })
        .collect();
    Evaluation::new(&batches, &set.labels, batch_size)
}

/// The predictions of `logits` (`[n, num_labels]`, on the CPU, float) for `problem`.
pub fn predictions(problem: ProblemType, logits: &Tensor) -> Result<Labels> {
    Ok(match problem {
        ProblemType::SingleLabelClassification => {
            Labels::Classes(Vec::try_from(logits.argmax(1, false))?)
        }
        ProblemType::Regression => Labels::Values(Vec::try_from(logits.reshape([-1]))?),
        ProblemType::MultiLabelClassification => {
            let hot = logits
                .sigmoid()
                .ge(MULTI_LABEL_THRESHOLD)
                .to_kind(Kind::Float);
            Labels::MultiHot(
                (0..hot.size()[0])
                    .map(|i| Vec::<f32>::try_from(hot.get(i)))
                    .collect::<Result<_, _>>()?,
            )
        }
        ProblemType::QuestionAnswering => {
            let (s, e) = heads::span_logits(logits)?;
            let (s, e): (Vec<i64>, Vec<i64>) = (
                Vec::try_from(s.argmax(1, false))?,
                Vec::try_from(e.argmax(1, false))?,
            );
            Labels::Spans(s.into_iter().zip(e).collect())
        }
        ProblemType::TokenClassification | ProblemType::MaskedLanguageModeling => {
            let best = logits.argmax(-1, false);
            let rows = (0..best.size()[0])
                .map(|i| Vec::<i64>::try_from(best.get(i)))
                .collect::<Result<_, _>>()?;
            if problem == ProblemType::TokenClassification {
                Labels::Tags(rows)
            } else {
                Labels::Tokens(rows)
            }
        }
    })
}

impl Evaluation {
    /// Scores the logits of consecutive evaluation batches (of `batch_size` rows, the last
    /// one possibly shorter) against `labels`: the loss is the mean of the batches' losses,
    /// as the tutorial averages it. One copy to the host for the lot.
    pub fn new(batch_logits: &[Tensor], labels: &Labels, batch_size: usize) -> Result<Self> {
        let problem_type = labels.problem_type();
        let rows: i64 = batch_logits.iter().map(|l| l.size()[0]).sum();
        if rows as usize != labels.len() {
            bail!("{rows} rows of logits for {} labels", labels.len());
        }
        if batch_logits.is_empty() {
            return Ok(Evaluation {
                problem_type,
                logits: Vec::new(),
                preds: labels.clone(),
                labels: labels.clone(),
                batch_size,
                loss: 0.0,
                seconds: 0.0,
                label_names: Vec::new(),
            });
        }
        if let Labels::Tags(tags) | Labels::Tokens(tags) = labels {
            return Self::of_tags(batch_logits, labels, tags, batch_size);
        }
        if let Labels::Spans(spans) = labels {
            return Self::of_spans(batch_logits, labels, spans, batch_size);
        }
        let device = batch_logits[0].device();
        let mut start = 0;
        let losses: Vec<Tensor> = batch_logits
            .iter()
            .map(|l| {
                let n = l.size()[0] as usize;
                let rows: Vec<usize> = (start..start + n).collect();
                start += n;
                let y = labels.tensor(&rows).to_device(device);
                heads::loss(problem_type, l, &y)
            })
            .collect::<Result<_>>()?;
        let loss = Tensor::stack(&losses, 0)
            .mean(Kind::Double)
            .double_value(&[]);
        let all = Tensor::cat(batch_logits, 0)
            .to_kind(Kind::Float)
            .to_device(Device::Cpu);
        let preds = predictions(problem_type, &all)?;
        let logits = (0..all.size()[0])
            .map(|i| Vec::<f32>::try_from(all.get(i)))
            .collect::<Result<_, _>>()?;
        Ok(Evaluation {
            problem_type,
            logits,
            preds,
            labels: labels.clone(),
            batch_size,
            loss,
            seconds: 0.0,
            label_names: Vec::new(),
        })
    }

    /// Token classification (and masked language modelling, whose tags are the vocabulary):
    /// batches of `[rows, width, tags]` logits, each as wide as its batch. The loss is the mean of the batches' losses; the predicted tag of every position
    /// a true tag has is kept (the logits themselves are not: one row per token would be a lot).
    fn of_tags(
        batch_logits: &[Tensor],
        labels: &Labels,
        tags: &[Vec<i64>],
        batch_size: usize,
    ) -> Result<Self> {
        let problem = labels.problem_type();
        let mut start = 0;
        let mut losses = Vec::with_capacity(batch_logits.len());
        let mut preds = Vec::with_capacity(tags.len());
        for l in batch_logits {
            let (n, width) = (l.size()[0] as usize, l.size()[1] as usize);
            let rows: Vec<usize> = (start..start + n).collect();
            let y = labels.tensor_of_width(&rows, width);
            losses.push(heads::loss(problem, l, &y.to_device(l.device()))?);
            let (Labels::Tags(best) | Labels::Tokens(best)) =
                predictions(problem, &l.to_device(Device::Cpu))?
            else {
                unreachable!("token classification and masked LM predict per token")
            };
            for (row, mut p) in rows.iter().zip(best) {
                p.truncate(tags[*row].len());
                preds.push(p);
            }
            start += n;
        }
        let loss = Tensor::stack(&losses, 0)
            .mean(Kind::Double)
            .double_value(&[]);
        Ok(Evaluation {
            problem_type: problem,
            logits: Vec::new(),
            preds: match problem {
                ProblemType::MaskedLanguageModeling => Labels::Tokens(preds),
                _ => Labels::Tags(preds),
            },
            labels: labels.clone(),
            batch_size,
            loss,
            seconds: 0.0,
            label_names: Vec::new(),
        })
    }

    /// Masked language modelling from each masked token's loss term and arg-max in row order
    /// (see [`masked_token_scores`]): the loss is the mean over consecutive batches of
    /// `batch_size` rows of each batch's mean term, as [`heads::masked_lm_loss`] of the batch
    /// gives it; each row's predictions hold the arg-max at its masked positions and -100
    /// elsewhere.
    fn of_masked_tokens(
        nll: &[f32],
        best: &[i64],
        labels: &Labels,
        tokens: &[Vec<i64>],
        batch_size: usize,
    ) -> Result<Self> {
        let total: usize = tokens.iter().map(|r| masked_positions(r).count()).sum();
        if nll.len() != total || best.len() != total {
            bail!(
                "{} scores for the {total} masked tokens of {} rows",
                nll.len(),
                tokens.len()
            );
        }
        let mut next = 0;
        let mut losses = Vec::new();
        let mut preds = Vec::with_capacity(tokens.len());
        for rows in tokens.chunks(batch_size.max(1)) {
            let start = next;
            for row in rows {
                let mut p = vec![IGNORE_INDEX; row.len()];
                for i in masked_positions(row) {
                    p[i] = best[next];
                    next += 1;
                }
                preds.push(p);
            }
            let terms = &nll[start..next];
            // A batch without a masked token has no loss: NaN, as the mean over none is.
            losses.push(terms.iter().map(|&v| f64::from(v)).sum::<f64>() / terms.len() as f64);
        }
        let loss = if losses.is_empty() {
            0.0
        } else {
            losses.iter().sum::<f64>() / losses.len() as f64
        };
        Ok(Evaluation {
            problem_type: ProblemType::MaskedLanguageModeling,
            logits: Vec::new(),
            preds: Labels::Tokens(preds),
            labels: labels.clone(),
            batch_size,
            loss,
            seconds: 0.0,
            label_names: Vec::new(),
        })
    }

    /// Question answering: batches of `[rows, width, 2]` span logits. Each row of `logits`
    /// holds the window's start logits then its end logits (as wide as its batch; see
    /// [`Evaluation::span_logits`]); the predictions are each window's best start and best end
    /// token, which the span accuracy compares with the labels. Answers as text come from
    /// [`super::answers::postprocess`] over these logits.
    fn of_spans(
        batch_logits: &[Tensor],
        labels: &Labels,
        spans: &[(i64, i64)],
        batch_size: usize,
    ) -> Result<Self> {
        let mut start = 0;
        let mut losses = Vec::with_capacity(batch_logits.len());
        let mut logits = Vec::with_capacity(spans.len());
        let mut preds = Vec::with_capacity(spans.len());
        for l in batch_logits {
            let n = l.size()[0] as usize;
            let rows: Vec<usize> = (start..start + n).collect();
            let y = labels.tensor(&rows);
            losses.push(heads::loss(
                ProblemType::QuestionAnswering,
                l,
                &y.to_device(l.device()),
            )?);
            let l = l.to_kind(Kind::Float).to_device(Device::Cpu);
            let (s, e) = heads::span_logits(&l)?;
            for i in 0..n as i64 {
                let (s, e) = (s.get(i), e.get(i));
                preds.push((
                    s.argmax(0, false).int64_value(&[]),
                    e.argmax(0, false).int64_value(&[]),
                ));
                let mut row = Vec::<f32>::try_from(&s)?;
                row.extend(Vec::<f32>::try_from(&e)?);
                logits.push(row);
            }
            start += n;
        }
        let loss = Tensor::stack(&losses, 0)
            .mean(Kind::Double)
            .double_value(&[]);
        Ok(Evaluation {
            problem_type: ProblemType::QuestionAnswering,
            logits,
            preds: Labels::Spans(preds),
            labels: labels.clone(),
            batch_size,
            loss,
            seconds: 0.0,
            label_names: Vec::new(),
        })
    }

    /// Question answering: each window's start and end logits (padding included, at the
    /// padding logit), for [`super::answers::postprocess`]; empty for other problem types.
    pub fn span_logits(&self) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
        if self.problem_type != ProblemType::QuestionAnswering {
            return (Vec::new(), Vec::new());
        }
        self.logits
            .iter()
            .map(|row| {
                let (s, e) = row.split_at(row.len() / 2);
                (s.to_vec(), e.to_vec())
            })
            .unzip()
    }

    /// Outputs per row (classes, labels, 1 for a regression; tags for token classification).
    pub fn width(&self) -> usize {
        if self.problem_type == ProblemType::QuestionAnswering {
            return 2;
        }
        if self.problem_type == ProblemType::TokenClassification {
            return self.label_names.len();
        }
        self.logits.first().map_or(2, Vec::len)
    }

    /// Token classification: the entity scores of the tagged positions, as seqeval reads
    /// the tag names (`None` for other problem types).
    pub fn entities(&self) -> Option<super::EntityReport> {
        let (Labels::Tags(p), Labels::Tags(l)) = (&self.preds, &self.labels) else {
            return None;
        };
        let name = |id: i64| {
            self.label_names
                .get(id as usize)
                .cloned()
                .unwrap_or_else(|| format!("LABEL_{id}"))
        };
        let (mut truth, mut predicted) = (Vec::new(), Vec::new());
        for (p, l) in p.iter().zip(l) {
            let kept: Vec<(i64, i64)> = l
                .iter()
                .zip(p)
                .filter(|(t, _)| **t != crate::data::tagging::IGNORE_INDEX)
                .map(|(t, q)| (*t, *q))
                .collect();
            truth.push(kept.iter().map(|(t, _)| name(*t)).collect::<Vec<_>>());
            predicted.push(kept.iter().map(|(_, q)| name(*q)).collect::<Vec<_>>());
        }
        super::EntityReport::new(&truth, &predicted).ok()
    }

    /// Share of rows predicted right: of classes, or of rows whose every label is right
    /// (multi-label subset accuracy); NaN for a regression, where it has no meaning.
    pub fn accuracy(&self) -> f64 {
        if let Some(report) = self.entities() {
            return report.accuracy;
        }
        match (&self.preds, &self.labels) {
            (Labels::Classes(p), Labels::Classes(l)) => accuracy(p, l),
            (Labels::Spans(p), Labels::Spans(l)) => {
                let right = p.iter().zip(l).filter(|(a, b)| a == b).count();
                right as f64 / l.len().max(1) as f64
            }
            (Labels::Tokens(p), Labels::Tokens(l)) => {
                let (mut right, mut masked) = (0usize, 0usize);
                for (p, l) in p.iter().zip(l) {
                    for (q, t) in p.iter().zip(l) {
                        if *t != crate::data::tagging::IGNORE_INDEX {
                            masked += 1;
                            right += usize::from(q == t);
                        }
                    }
                }
                right as f64 / masked.max(1) as f64
            }
            (Labels::MultiHot(_), Labels::MultiHot(_)) => {
                let (p, l) = self.indicators();
                subset_accuracy(&p, &l)
            }
            _ => f64::NAN,
        }
    }

    /// MCC over the whole set: the number CoLA results are quoted by (single-label only;
    /// NaN otherwise).
    pub fn mcc(&self) -> f64 {
        match (&self.preds, &self.labels) {
            (Labels::Classes(p), Labels::Classes(l)) => matthews(p, l),
            _ => f64::NAN,
        }
    }

    /// MCC of each evaluation batch (small batches often score 0.0: one class only).
    pub fn per_batch_mcc(&self) -> Vec<f64> {
        let (Labels::Classes(p), Labels::Classes(l)) = (&self.preds, &self.labels) else {
            return Vec::new();
        };
        p.chunks(self.batch_size.max(1))
            .zip(l.chunks(self.batch_size.max(1)))
            .map(|(p, l)| matthews(p, l))
            .collect()
    }

    /// Counts by (true class, predicted class); single-label only (an empty grid otherwise).
    pub fn confusion(&self) -> ConfusionMatrix {
        match (&self.preds, &self.labels) {
            (Labels::Classes(p), Labels::Classes(l)) => {
                ConfusionMatrix::new(p, l, self.width().max(2))
            }
            _ => ConfusionMatrix::new(&[], &[], 0),
        }
    }

    fn indicators(&self) -> (Vec<Vec<bool>>, Vec<Vec<bool>>) {
        let w = self.width();
        (
            self.preds.indicators(w).unwrap_or_default(),
            self.labels.indicators(w).unwrap_or_default(),
        )
    }

    fn values(&self) -> (Vec<f64>, Vec<f64>) {
        let as_f64 = |l: &Labels| match l {
            Labels::Values(v) => v.iter().map(|&x| f64::from(x)).collect(),
            _ => Vec::new(),
        };
        (as_f64(&self.preds), as_f64(&self.labels))
    }

    /// The figures of the problem type, by the names `metric_for_best_model` takes:
    /// - always `loss`;
    /// - single-label: `accuracy`, `macro_f1`, `mcc`, and for two classes `f1` (of class 1,
    ///   what GLUE reports for MRPC and QQP);
    /// - regression: `mse`, `pearson`, `spearmanr`;
    /// - multi-label: `micro_f1`, `macro_f1`, `subset_accuracy`;
    /// - token classification: entity `precision`, `recall`, `f1` (overall, as run_ner's
    ///   `overall_*`) and token `accuracy`;
    /// - question answering: `span_accuracy`, the share of windows whose best start and best
    ///   end token are the answer's (SQuAD's exact match and F1 need the texts: see
    ///   [`super::answers::postprocess`] and [`super::SquadScores`]).
    pub fn metrics(&self) -> BTreeMap<String, f64> {
        let mut m = BTreeMap::new();
        m.insert("loss".to_string(), self.loss);
        match self.problem_type {
            ProblemType::SingleLabelClassification => {
                m.insert("accuracy".into(), self.accuracy());
                m.insert("mcc".into(), self.mcc());
                m.insert("macro_f1".into(), self.confusion().macro_average().f1);
                if let (Labels::Classes(p), Labels::Classes(l), 2) =
                    (&self.preds, &self.labels, self.width())
                {
                    m.insert("f1".into(), binary_f1(p, l));
                }
            }
            ProblemType::Regression => {
                let (p, l) = self.values();
                let mse = p.iter().zip(&l).map(|(a, b)| (a - b).powi(2)).sum::<f64>()
                    / l.len().max(1) as f64;
                m.insert("mse".into(), mse);
                m.insert("pearson".into(), pearson(&p, &l));
                m.insert("spearmanr".into(), spearman(&p, &l));
            }
            ProblemType::MultiLabelClassification => {
                let (p, l) = self.indicators();
                m.insert("micro_f1".into(), micro_f1(&p, &l));
                m.insert("subset_accuracy".into(), subset_accuracy(&p, &l));
                let per_label: Vec<f64> = (0..self.width())
                    .map(|j| {
                        let col = |rows: &[Vec<bool>]| -> Vec<Vec<bool>> {
                            rows.iter().map(|r| vec![r[j]]).collect()
                        };
                        micro_f1(&col(&p), &col(&l))
                    })
                    .collect();
                m.insert(
                    "macro_f1".into(),
                    per_label.iter().sum::<f64>() / per_label.len().max(1) as f64,
                );
            }
            ProblemType::QuestionAnswering => {
                m.insert("span_accuracy".into(), self.accuracy());
            }
            ProblemType::MaskedLanguageModeling => {
                // run_mlm's figures: perplexity = exp(mean loss), and the share of masked
                // positions whose best token is the original.
                m.insert("perplexity".into(), self.loss.exp());
                m.insert("accuracy".into(), self.accuracy());
            }
            ProblemType::TokenClassification => {
                if let Some(report) = self.entities() {
                    m.insert("precision".into(), report.overall.precision);
                    m.insert("recall".into(), report.overall.recall);
                    m.insert("f1".into(), report.overall.f1);
                    m.insert("accuracy".into(), report.accuracy);
                }
            }
        }
        m
    }
}

impl Evaluation {
    /// Precision, recall, F1 and support of each class (single-label) or label
    /// (multi-label), named by `names`, with the macro average last (scikit-learn's
    /// `classification_report`); `None` for a regression.
    pub fn class_report(&self, names: &[String]) -> Option<Table> {
        let scores = match self.problem_type {
            ProblemType::Regression
            | ProblemType::QuestionAnswering
            | ProblemType::MaskedLanguageModeling => return None,
            ProblemType::TokenClassification => return self.entities().map(|r| r.table()),
            ProblemType::SingleLabelClassification => self.confusion().per_class(),
            ProblemType::MultiLabelClassification => {
                let (p, l) = self.indicators();
                (0..self.width())
                    .map(|j| {
                        let col = |rows: &[Vec<bool>]| -> Vec<i64> {
                            rows.iter().map(|r| i64::from(r[j])).collect()
                        };
                        ConfusionMatrix::new(&col(&p), &col(&l), 2).per_class()[1]
                    })
                    .collect()
            }
        };
        let mut table = Table::new(
            "Scores per class",
            &["class", "precision", "recall", "F1", "support"],
        );
        let n = scores.len().max(1) as f64;
        for (i, s) in scores.iter().enumerate() {
            let name = names
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("LABEL_{i}"));
            table.push_row([
                name,
                format!("{:.3}", s.precision),
                format!("{:.3}", s.recall),
                format!("{:.3}", s.f1),
                s.support.to_string(),
            ]);
        }
        let mean = |f: fn(&super::ClassScores) -> f64| scores.iter().map(f).sum::<f64>() / n;
        table.push_row([
            "macro average".to_string(),
            format!("{:.3}", mean(|s| s.precision)),
            format!("{:.3}", mean(|s| s.recall)),
            format!("{:.3}", mean(|s| s.f1)),
            scores.iter().map(|s| s.support).sum::<usize>().to_string(),
        ]);
        Some(table)
    }
}

impl fmt::Display for Evaluation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problem_type {
            ProblemType::SingleLabelClassification => {
                let per_batch: Vec<String> = self
                    .per_batch_mcc()
                    .iter()
                    .map(|m| format!("{m:.3}"))
                    .collect();
                writeln!(f, "MCC per batch: [{}]", per_batch.join(", "))?;
                writeln!(f, "Accuracy: {:.3}", self.accuracy())?;
                write!(f, "MCC: {:.3}", self.mcc())
            }
            _ => {
                let lines: Vec<String> = self
                    .metrics()
                    .iter()
                    .map(|(k, v)| format!("{k}: {v:.4}"))
                    .collect();
                write!(f, "{}", lines.join("\n"))
            }
        }
    }
}
