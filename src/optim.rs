//! AdamW with the tutorial's two weight-decay groups, a linear warm-up/decay schedule and
//! gradient clipping: the three things `torch.optim.AdamW`, `get_linear_schedule_with_warmup`
//! and `clip_grad_norm_` do in the Python loop.
//!
//! The update itself is libtorch's AdamW (the same C++ kernels PyTorch runs). Decay groups come
//! from the var store: the model puts biases and LayerNorm parameters in group
//! [`NO_DECAY`](crate::model::bert::NO_DECAY) when it creates them.

use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};
use tch::nn::{OptimizerConfig, VarStore};
use tch::Tensor;

use crate::model::bert::{DECAY, NO_DECAY};

/// Optimizer settings; the defaults are the tutorial's.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct AdamWConfig {
    pub lr: f64,
    pub eps: f64,
    pub beta1: f64,
    pub beta2: f64,
    /// Decay for weights; biases and LayerNorm parameters never decay.
    pub weight_decay: f64,
    pub warmup_steps: usize,
    /// Global L2 norm the gradients are clipped to.
    pub max_grad_norm: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            lr: 2e-5,
            eps: 1e-8,
            beta1: 0.9,
            beta2: 0.999,
            weight_decay: 0.0,
            warmup_steps: 0,
            max_grad_norm: 1.0,
        }
    }
}

/// Learning-rate factor of `get_linear_schedule_with_warmup` after `step` optimizer steps.
pub fn linear_schedule(step: usize, warmup: usize, total: usize) -> f64 {
    if step < warmup {
        return step as f64 / warmup.max(1) as f64;
    }
    let remaining = total.saturating_sub(step) as f64;
    (remaining / total.saturating_sub(warmup).max(1) as f64).max(0.0)
}

/// AdamW plus schedule plus clipping, stepping a model's var store.
pub struct AdamW {
    opt: tch::nn::Optimizer,
    params: Vec<Tensor>,
    config: AdamWConfig,
    total_steps: usize,
    steps_done: usize,
}

impl AdamW {
    pub fn new(vs: &VarStore, config: AdamWConfig, total_steps: usize) -> Result<Self> {
        let mut opt = tch::nn::AdamW {
            beta1: config.beta1,
            beta2: config.beta2,
            wd: config.weight_decay,
            eps: config.eps,
            amsgrad: false,
        }
        .build(vs, config.lr)
        .map_err(|e| anyhow!("cannot build AdamW: {e}"))?;
        opt.set_weight_decay_group(DECAY, config.weight_decay);
        opt.set_weight_decay_group(NO_DECAY, 0.0);
        let mut this = AdamW {
            opt,
            params: vs.trainable_variables(),
            config,
            total_steps,
            steps_done: 0,
        };
        this.apply_schedule();
        Ok(this)
    }

    /// Learning rate the next step will use.
    pub fn lr(&self) -> f64 {
        self.config.lr
            * linear_schedule(self.steps_done, self.config.warmup_steps, self.total_steps)
    }

    fn apply_schedule(&mut self) {
        let lr = self.lr();
        self.opt.set_lr(lr);
    }

    /// Backward pass, clipping, one AdamW update and one schedule step.
    ///
    /// Returns the gradient norm before clipping as a device scalar; reading it forces a sync,
    /// so the caller decides when that is worth it.
    pub fn backward_step(&mut self, loss: &Tensor) -> Tensor {
        self.opt.zero_grad();
        loss.backward();
        let norm = clip_grad_norm(&self.params, self.config.max_grad_norm);
        self.opt.step();
        self.steps_done += 1;
        self.apply_schedule();
        norm
    }

    pub fn steps_done(&self) -> usize {
        self.steps_done
    }
}

/// `torch.nn.utils.clip_grad_norm_`: scales all gradients so their global L2 norm is at most
/// `max_norm`, without a host sync (the scale is clamped on the device).
pub fn clip_grad_norm(params: &[Tensor], max_norm: f64) -> Tensor {
    tch::no_grad(|| {
        let grads: Vec<Tensor> = params
            .iter()
            .map(|p| p.grad())
            .filter(|g| g.defined())
            .collect();
        if grads.is_empty() {
            return Tensor::from(0.0f32);
        }
        let norms: Vec<Tensor> = grads.iter().map(|g| g.norm()).collect();
        let total = Tensor::stack(&norms, 0).norm();
        let scale = (max_norm / (&total + 1e-6)).clamp_max(1.0);
        for g in &grads {
            let mut g = g.shallow_clone();
            let _ = g.g_mul_(&scale);
        }
        total
    })
}
