//! AdamW with the tutorial's two weight-decay groups, a linear warm-up/decay schedule and
//! gradient clipping: the three things `torch.optim.AdamW`, `get_linear_schedule_with_warmup`
//! and `clip_grad_norm_` do in the Python loop.
//!
//! The update is `at::_fused_adamw_`, with the clipping folded into it (the global norm, then
//! the kernel's `grad_scale`; see [`FusedAdamW`]), through the C++ shim
//! ([`crate::runtime::ffi`]): one optimizer step is a fixed handful of ATen calls, not a loop
//! over parameter tensors, which matters on a GPU where each call is a kernel launch.
//! fp16 training scales the loss and skips steps whose gradients overflow ([`LossScaler`], as
//! `torch.amp.GradScaler`). [`clip_grad_norm`] is PyTorch's `clip_grad_norm_` as it is, for code that wants it. Decay groups come from the var store: the model puts biases and LayerNorm
//! parameters in group [`NO_DECAY`](crate::model::layers::NO_DECAY) when it creates them.

mod adamw;
mod clip;
mod scaler;
mod schedule;

use serde::{Deserialize, Serialize};

pub use adamw::FusedAdamW;
pub use clip::{clip_grad_norm, zero_grad};
pub use scaler::{LossScaleConfig, LossScaler};
pub use schedule::{linear_schedule, LinearSchedule};

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
