//! [`TrainConfig`]: every setting that decides a run, checked once, before any long work.
//!
//! Errors name the field as a Rust caller wrote it (`TrainConfig.epochs = 0`), because the
//! library cannot know which flag or notebook variable set it; the CLI turns a
//! [`ConfigError`] into its own flag's name.

use std::fmt;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::model::BertConfig;
use crate::optim::{AdamWConfig, LossScaleConfig};
use crate::runtime::precision::Precision;

/// Everything that decides a run; stored in [`super::History`] so a result can be traced to it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub seed: u64,
    /// A progress line every this many batches (the tutorial: 40).
    pub log_every: usize,
    pub optimizer: AdamWConfig,
    /// fp32, tf32, bf16 or fp16 (see [`Precision`]); the CPU's default is fp32.
    #[serde(default)]
    pub precision: Precision,
    /// fp16's dynamic loss scaling (`GradScaler`'s settings; unused at other precisions).
    #[serde(default)]
    pub loss_scale: LossScaleConfig,
    /// Batch size for validation (no gradients are kept, so it can be larger).
    #[serde(default = "default_eval_batch_size")]
    pub eval_batch_size: usize,
    /// Batches whose gradients add up to one optimizer step (transformers'
    /// `gradient_accumulation_steps`): `batch_size × this` sentences per step, in the memory
    /// of one batch. Each batch's loss is divided by the batches in its group, so a group of
    /// equal batches steps as one batch of their size does.
    #[serde(default = "one")]
    pub gradient_accumulation_steps: usize,
    /// A weight per class for the cross-entropy (single-label only; see
    /// `model::heads::balanced_class_weights` for scikit-learn's "balanced").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_weights: Option<Vec<f64>>,
    /// Also evaluate every this many optimizer steps, not only after each epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_steps: Option<usize>,
    /// Keep the weights of the evaluation that scored best on this metric (a name of
    /// `Evaluation::metrics`: `loss`, `accuracy`, `mcc`, `f1`, `macro_f1`, `pearson`,
    /// `spearmanr`, `mse`, `micro_f1`, `subset_accuracy`; an `eval_` prefix is allowed, as in
    /// transformers) and load them at the end. Lower is better for `loss` and `mse`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_for_best_model: Option<String>,
    /// Stop after this many evaluations in a row that do not improve on the best by more than
    /// `early_stopping_threshold` (transformers' `EarlyStoppingCallback`); needs
    /// `metric_for_best_model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_stopping_patience: Option<usize>,
    #[serde(default)]
    pub early_stopping_threshold: f64,
    /// Train this many optimizer steps, however many epochs that takes (transformers'
    /// `max_steps`): it overrides `epochs`, which becomes the epochs those steps start, the
    /// last of them cut short where the steps run out; the schedule spans exactly these steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_steps: Option<usize>,
}

fn default_eval_batch_size() -> usize {
    128
}

fn one() -> usize {
    1
}

/// Every metric name an evaluation can report (see `Evaluation::metrics`).
pub const METRIC_NAMES: [&str; 14] = [
    "loss",
    "accuracy",
    "mcc",
    "f1",
    "macro_f1",
    "mse",
    "pearson",
    "spearmanr",
    "micro_f1",
    "subset_accuracy",
    "precision",
    "recall",
    "span_accuracy",
    "perplexity",
];

/// The metric's name without transformers' `eval_` prefix.
pub fn metric_key(name: &str) -> &str {
    name.strip_prefix("eval_").unwrap_or(name)
}

/// Whether a higher value of `metric` is better (false for `loss`, `mse` and `perplexity`).
pub fn greater_is_better(metric: &str) -> bool {
    !matches!(metric_key(metric), "loss" | "mse" | "perplexity")
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 4,
            batch_size: 32,
            seed: 42,
            log_every: 40,
            optimizer: AdamWConfig::default(),
            precision: Precision::Fp32,
            loss_scale: LossScaleConfig::default(),
            eval_batch_size: default_eval_batch_size(),
            gradient_accumulation_steps: 1,
            class_weights: None,
            eval_steps: None,
            metric_for_best_model: None,
            early_stopping_patience: None,
            early_stopping_threshold: 0.0,
            max_steps: None,
        }
    }
}

/// A setting that cannot train: which field, the value it holds, and what is allowed.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// The field's path below `TrainConfig`, as in `optimizer.lr`.
    pub field: &'static str,
    pub value: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TrainConfig.{} = {}: {}",
            self.field, self.value, self.reason
        )
    }
}

impl std::error::Error for ConfigError {}

fn refuse(field: &'static str, value: impl fmt::Display, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        field,
        value: value.to_string(),
        reason: reason.into(),
    }
}

impl TrainConfig {
    /// Refuses settings that cannot train, naming the field and what is allowed. The
    /// [`super::Trainer`] calls it when it is built; the CLI calls it before loading any data.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Err(e) = self.loss_scale.validate() {
            return Err(ConfigError {
                field: "loss_scale",
                value: format!("{:?}", self.loss_scale),
                reason: e.to_string(),
            });
        }
        if self.epochs == 0 {
            return Err(refuse("epochs", 0, "train for at least 1 epoch"));
        }
        if self.max_steps == Some(0) {
            return Err(refuse("max_steps", 0, "train for at least 1 step"));
        }
        if self.batch_size == 0 {
            return Err(refuse("batch_size", 0, "a batch holds at least 1 sentence"));
        }
        if self.eval_batch_size == 0 {
            return Err(refuse(
                "eval_batch_size",
                0,
                "a batch holds at least 1 sentence",
            ));
        }
        if self.log_every == 0 {
            return Err(refuse("log_every", 0, "log at least every 1 batch"));
        }
        if self.gradient_accumulation_steps == 0 {
            return Err(refuse(
                "gradient_accumulation_steps",
                0,
                "a step takes at least 1 batch",
            ));
        }
        if self.eval_steps == Some(0) {
            return Err(refuse("eval_steps", 0, "evaluate at most every 1 step"));
        }
        if let Some(metric) = &self.metric_for_best_model {
            if !METRIC_NAMES.contains(&metric_key(metric)) {
                return Err(refuse(
                    "metric_for_best_model",
                    metric,
                    format!("use one of {}", METRIC_NAMES.join(", ")),
                ));
            }
        }
        match self.early_stopping_patience {
            Some(0) => {
                return Err(refuse(
                    "early_stopping_patience",
                    0,
                    "wait at least 1 evaluation",
                ))
            }
            Some(p) if self.metric_for_best_model.is_none() => {
                return Err(refuse(
                    "early_stopping_patience",
                    p,
                    "early stopping watches metric_for_best_model; set it too",
                ))
            }
            _ => {}
        }
        if !(self.early_stopping_threshold.is_finite() && self.early_stopping_threshold >= 0.0) {
            return Err(refuse(
                "early_stopping_threshold",
                self.early_stopping_threshold,
                "must be a finite number ≥ 0",
            ));
        }
        if let Some(w) = &self.class_weights {
            if let Some(bad) = w.iter().find(|x| !(x.is_finite() && **x > 0.0)) {
                return Err(refuse(
                    "class_weights",
                    format!("{w:?}"),
                    format!("every weight must be a finite number > 0 (not {bad})"),
                ));
            }
        }
        let o = &self.optimizer;
        let positive = |field, v: f64| {
            (!(v.is_finite() && v > 0.0)).then(|| refuse(field, v, "must be a finite number > 0"))
        };
        if let Some(e) = positive("optimizer.lr", o.lr) {
            return Err(e);
        }
        if let Some(e) = positive("optimizer.eps", o.eps) {
            return Err(e);
        }
        if !(o.weight_decay.is_finite() && o.weight_decay >= 0.0) {
            return Err(refuse(
                "optimizer.weight_decay",
                o.weight_decay,
                "must be a finite number ≥ 0",
            ));
        }
        if let Some(e) = positive("optimizer.max_grad_norm", o.max_grad_norm) {
            return Err(e);
        }
        for (field, beta) in [("optimizer.beta1", o.beta1), ("optimizer.beta2", o.beta2)] {
            if !(0.0..1.0).contains(&beta) {
                return Err(refuse(field, beta, "must be in [0, 1)"));
            }
        }
        Ok(())
    }

    /// Optimizer steps of an epoch of `batches_per_epoch` batches (a last, shorter group of
    /// accumulated batches is a step too).
    pub fn steps_per_epoch(&self, batches_per_epoch: usize) -> usize {
        batches_per_epoch.div_ceil(self.gradient_accumulation_steps.max(1))
    }

    /// The epochs a run takes at `batches_per_epoch`: `epochs`, or with `max_steps` the
    /// epochs those steps start.
    pub fn epochs_for(&self, batches_per_epoch: usize) -> usize {
        match self.max_steps {
            Some(steps) => steps.div_ceil(self.steps_per_epoch(batches_per_epoch).max(1)),
            None => self.epochs,
        }
    }

    /// Optimizer steps of the whole run at `batches_per_epoch`: `max_steps`, else steps per
    /// epoch × epochs.
    pub fn total_steps(&self, batches_per_epoch: usize) -> usize {
        self.max_steps
            .unwrap_or(self.steps_per_epoch(batches_per_epoch) * self.epochs)
    }

    /// The check that needs the number of batches per epoch: warm-up fits in the run.
    pub fn validate_steps(&self, batches_per_epoch: usize) -> Result<(), ConfigError> {
        let per_epoch = self.steps_per_epoch(batches_per_epoch);
        let total = self.total_steps(batches_per_epoch);
        if self.optimizer.warmup_steps > total {
            return Err(refuse(
                "optimizer.warmup_steps",
                self.optimizer.warmup_steps,
                format!(
                    "the run has only {total} steps ({per_epoch} steps × {} epochs)",
                    self.epochs
                ),
            ));
        }
        Ok(())
    }
}

/// Sequences of `max_len` tokens fit the model's position embeddings (else the embedding
/// lookup fails inside libtorch mid-run).
pub fn check_sequence_length(max_len: usize, model: &BertConfig) -> Result<()> {
    let positions = model.max_tokens() as usize;
    if max_len > positions {
        anyhow::bail!(
            "max_len {max_len} is longer than the model's {positions} position embeddings \
             (max_position_embeddings in its config.json)"
        );
    }
    Ok(())
}
