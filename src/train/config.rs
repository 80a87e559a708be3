//! [`TrainConfig`]: every setting that decides a run, checked once, before any long work.
//!
//! Errors name the field as a Rust caller wrote it (`TrainConfig.epochs = 0`), because the
//! library cannot know which flag or notebook variable set it; the CLI turns a
//! [`ConfigError`] into its own flag's name.

use std::fmt;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::model::BertConfig;
use crate::optim::AdamWConfig;
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
    /// fp32, tf32 or bf16 (see [`Precision`]); the CPU's default is fp32.
    #[serde(default)]
    pub precision: Precision,
    /// Batch size for validation (no gradients are kept, so it can be larger).
    #[serde(default = "default_eval_batch_size")]
    pub eval_batch_size: usize,
}

fn default_eval_batch_size() -> usize {
    128
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
            eval_batch_size: default_eval_batch_size(),
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
        if self.epochs == 0 {
            return Err(refuse("epochs", 0, "train for at least 1 epoch"));
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

    /// The check that needs the number of batches per epoch: warm-up fits in the run.
    pub fn validate_steps(&self, batches_per_epoch: usize) -> Result<(), ConfigError> {
        let total = batches_per_epoch * self.epochs;
        if self.optimizer.warmup_steps > total {
            return Err(refuse(
                "optimizer.warmup_steps",
                self.optimizer.warmup_steps,
                format!(
                    "the run has only {total} steps ({batches_per_epoch} batches × {} epochs)",
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
    let positions = model.max_position_embeddings as usize;
    if max_len > positions {
        anyhow::bail!(
            "max_len {max_len} is longer than the model's {positions} position embeddings \
             (max_position_embeddings in its config.json)"
        );
    }
    Ok(())
}
