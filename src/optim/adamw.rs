//! AdamW with the tutorial's two weight-decay groups, as `torch.optim.AdamW(fused=True)`.
//!
//! Named `FusedAdamW` so it is not mistaken for `tch::nn::AdamW`, libtorch's per-tensor loop.
//! The state is plain tensors (two moments per parameter and one step counter), and one
//! optimizer step is a fixed number of ATen calls whatever the number of parameter tensors:
//! one step increment and one `_fused_adamw_` per group.
//!
//! Clipping does not rescale the gradients in a pass of its own: the clipping coefficient
//! (and, under data parallel, the division by the world size) goes into the fused kernel's
//! `grad_scale`, which divides each gradient as the update reads it and writes the result
//! back, so after [`FusedAdamW::step`] the `.grad` tensors hold the clipped gradients, as after
//! `clip_grad_norm_`. That saves one read and one write of every gradient per step.
//!
//! Two layouts of the gradients ([`FusedAdamW::set_flat_gradients`]):
//! - **Per tensor** (the default): `zero_grad` drops the gradients and backward allocates them
//!   afresh, as PyTorch's `set_to_none` does; the norm is `_foreach_norm` on CUDA and a loop
//!   of BLAS `dot`s on the CPU (where `_foreach_norm` is itself a loop, of slower kernels).
//! - **Flat**: every parameter's `.grad` is a view into one buffer (DDP's
//!   `gradient_as_bucket_view`, Apex's flat buffers). `zero_grad` zeroes the buffer and
//!   backward accumulates into the views, so the norm is one `dot` and a data-parallel
//!   all-reduce one collective on one tensor, in place, without the copies in and out of a
//!   bucket that a list of tensors costs. The Trainer uses it under data parallel. On the CPU
//!   it loses in a single process: zeroing the buffer and accumulating into it (where backward
//!   would otherwise hand over its fresh gradient) cost more than the norm saves (`make bench`
//!   prints a step's phases in both layouts).
//!
//!   One difference from PyTorch follows: a parameter that got no gradient from a backward pass
//!   still takes an update with a zero gradient (moment decay and weight decay), where
//!   `torch.optim` skips a `None` gradient. Every parameter of
//!   [`BertForSequenceClassification`](crate::model::BertForSequenceClassification) receives a
//!   gradient at every step, so BERT training is unaffected.

use anyhow::{bail, Result};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use super::{AdamWConfig, LossScaler};
use crate::model::layers::{DECAY, NO_DECAY};
use crate::runtime::ffi::{self, AdamWStep};

/// Parameters sharing a weight decay, with their moments.
struct Group {
    params: Vec<Tensor>,
    exp_avgs: Vec<Tensor>,
    exp_avg_sqs: Vec<Tensor>,
    weight_decay: f64,
}

impl Group {
    fn new(params: Vec<Tensor>, weight_decay: f64) -> Self {
        let zeros = |ps: &[Tensor]| -> Vec<Tensor> {
            tch::no_grad(|| ps.iter().map(Tensor::zeros_like).collect())
        };
        Group {
            exp_avgs: zeros(&params),
            exp_avg_sqs: zeros(&params),
            params,
            weight_decay,
        }
    }
}

/// AdamW over a model's var store, with clipping of its gradients; the learning rate is set
/// by a [`LinearSchedule`](super::LinearSchedule) after each step.
pub struct FusedAdamW {
    groups: Vec<Group>,
    /// Every trainable parameter, for clipping and `zero_grad`.
    params: Vec<Tensor>,
    /// Steps taken, as a 0-dim float tensor on the parameters' device (the fused kernel reads
    /// it there; incremented before each update, as PyTorch does).
    step: Tensor,
    config: AdamWConfig,
    /// The learning rate of the next step.
    lr: f64,
    /// Every gradient, in `params` order, in the flat layout (see the module doc).
    flat_grads: Option<Tensor>,
    /// The divisor the next step applies to the gradients: set by clipping.
    grad_scale: Option<Tensor>,
    /// How many ranks' gradients `flat_grads` sums (1 outside data parallel).
    summed_over: usize,
    /// fp16 loss scaling, when on ([`FusedAdamW::set_loss_scaler`]).
    scaler: Option<LossScaler>,
}

impl FusedAdamW {
    /// Groups the var store's trainable variables by their var-store group: [`DECAY`] takes
    /// `config.weight_decay`, [`NO_DECAY`] none.
    pub fn new(vs: &VarStore, config: AdamWConfig) -> Result<Self> {
        crate::runtime::device::ensure_cuda_backend();
        if !(config.lr.is_finite() && config.lr >= 0.0) {
            bail!("learning rate {} must be a finite number ≥ 0", config.lr);
        }
        if !(config.eps > 0.0 && config.eps.is_finite()) {
            bail!("eps {} must be a finite number > 0", config.eps);
        }
        if !(0.0..1.0).contains(&config.beta1) || !(0.0..1.0).contains(&config.beta2) {
            bail!(
                "betas ({}, {}) must lie in [0, 1)",
                config.beta1,
                config.beta2
            );
        }
        let (mut decay, mut no_decay) = (Vec::new(), Vec::new());
        {
            let vars = vs
                .variables_
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            for v in &vars.trainable_variables {
                match v.group {
                    NO_DECAY => no_decay.push(v.tensor.shallow_clone()),
                    DECAY => decay.push(v.tensor.shallow_clone()),
                    other => bail!("variable in unknown weight-decay group {other}"),
                }
            }
        }
        let device = decay
            .first()
            .or(no_decay.first())
            .map_or(vs.device(), Tensor::device);
        let mut params: Vec<Tensor> = decay.iter().map(Tensor::shallow_clone).collect();
        params.extend(no_decay.iter().map(Tensor::shallow_clone));
        for p in &params {
            if p.kind() != Kind::Float {
                bail!(
                    "AdamW keeps fp32 master weights; found a {:?} parameter",
                    p.kind()
                );
            }
            if p.device() != device {
                bail!(
                    "all parameters must live on one device ({device:?}, found {:?})",
                    p.device()
                );
            }
        }
        let groups = [(decay, config.weight_decay), (no_decay, 0.0)]
            .into_iter()
            .filter(|(ps, _)| !ps.is_empty())
            .map(|(ps, wd)| Group::new(ps, wd))
            .collect();
        Ok(FusedAdamW {
            groups,
            params,
            step: Tensor::zeros([], (Kind::Float, device)),
            lr: config.lr,
            config,
            flat_grads: None,
            grad_scale: None,
            summed_over: 1,
            scaler: None,
        })
    }

    /// Turns fp16 loss scaling on (or off with `None`); its state goes into [`FusedAdamW::state`].
    pub fn set_loss_scaler(&mut self, scaler: Option<LossScaler>) {
        self.scaler = scaler;
    }

    pub fn loss_scaler(&self) -> Option<&LossScaler> {
        self.scaler.as_ref()
    }

    /// The loss to run backward from: times the loss scale when scaling is on.
    pub fn scale_loss(&self, loss: &Tensor) -> Tensor {
        match &self.scaler {
            Some(s) => s.scaled(loss),
            None => loss.shallow_clone(),
        }
    }

    /// `scaler.unscale_(optimizer)` when loss scaling is on: the gradients divided by the
    /// scale, and whether any is inf or NaN (then the step must be skipped: call
    /// [`FusedAdamW::update_loss_scale`] and not [`FusedAdamW::step`]). `false` without scaling.
    pub fn unscale_gradients(&mut self) -> Result<bool> {
        self.gather()?;
        match &mut self.scaler {
            Some(s) => s.unscale(&self.params),
            None => Ok(false),
        }
    }

    /// `scaler.update()` after a step (taken or skipped); nothing without loss scaling.
    pub fn update_loss_scale(&mut self) -> Result<()> {
        match &mut self.scaler {
            Some(s) => s.update(),
            None => Ok(()),
        }
    }

    /// Learning rate the next step will use.
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// Sets the learning rate of the next step (what a scheduler does).
    pub fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    pub fn config(&self) -> &AdamWConfig {
        &self.config
    }

    /// Every trainable parameter, in the optimizer's order.
    pub fn parameters(&self) -> &[Tensor] {
        &self.params
    }

    /// Number of parameter tensors it updates.
    pub fn num_tensors(&self) -> usize {
        self.params.len()
    }

    pub fn device(&self) -> Device {
        self.step.device()
    }

    /// Switches between the per-tensor and the flat layout of the gradients (see the module
    /// doc). Entering the flat layout keeps the current gradients (copied into the buffer);
    /// leaving it drops them, so switch between steps.
    pub fn set_flat_gradients(&mut self, flat: bool) -> Result<()> {
        match (flat, self.flat_grads.is_some()) {
            (true, false) => {
                let numel: usize = self.params.iter().map(Tensor::numel).sum();
                let buffer = Tensor::f_zeros([numel as i64], (Kind::Float, self.device()))?;
                ffi::grads_into(&self.params, &buffer, false)?;
                self.flat_grads = Some(buffer);
            }
            (false, true) => {
                ffi::zero_grad(&self.params)?;
                self.flat_grads = None;
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether the gradients are views into one flat buffer.
    pub fn flat_gradients_on(&self) -> bool {
        self.flat_grads.is_some()
    }

    /// `model.zero_grad()`: in the per-tensor layout drops every gradient (set to none, as
    /// PyTorch does by default); in the flat layout zeroes the buffer (one `zero_`) and points
    /// every `.grad` at its slice, for the next backward pass to accumulate into.
    pub fn zero_grad(&mut self) -> Result<()> {
        self.grad_scale = None;
        self.summed_over = 1;
        match &self.flat_grads {
            Some(flat) => ffi::grads_into(&self.params, flat, true),
            None => ffi::zero_grad(&self.params),
        }
    }

    /// Every gradient in one 1-d tensor (the storage the `.grad` views share), for one
    /// all-reduce; switches to the flat layout if needed. A gradient that is not a view yet
    /// (the gradients were reset to none, or replaced, since [`FusedAdamW::zero_grad`]) is
    /// copied in first.
    pub fn flat_gradients(&mut self) -> Result<Tensor> {
        self.set_flat_gradients(true)?;
        self.gather()?;
        match &self.flat_grads {
            Some(flat) => Ok(flat.shallow_clone()),
            None => bail!("no flat gradient buffer"),
        }
    }

    /// In the flat layout, makes every `.grad` its view of the buffer again (no ATen call when
    /// nothing replaced them).
    fn gather(&self) -> Result<()> {
        match &self.flat_grads {
            Some(flat) => ffi::grads_into(&self.params, flat, false),
            None => Ok(()),
        }
    }

    /// Says that the gradients now hold the sum over `ranks` data-parallel ranks (after an
    /// all-reduce of [`FusedAdamW::flat_gradients`]): clipping and the update use their mean,
    /// the division folded into the update. Reset by [`FusedAdamW::zero_grad`].
    pub fn gradients_summed_over(&mut self, ranks: usize) {
        self.summed_over = ranks.max(1);
    }

    /// `clip_grad_norm_(model.parameters(), max_grad_norm)`: the global norm of the gradients
    /// the last backward pass left (their mean over ranks under data parallel), and the
    /// coefficient that clips it to the configured `max_grad_norm`, which the next
    /// [`FusedAdamW::step`] applies as it reads the gradients (see the module doc; until then
    /// the `.grad` tensors are unclipped). Returns the norm before clipping as a device scalar;
    /// reading it forces a host sync, so the caller decides when that is worth it.
    pub fn clip_grad_norm(&mut self) -> Result<Tensor> {
        self.gather()?;
        let (norm, scale) = ffi::clip_scale(
            &self.params,
            self.flat_grads.as_ref(),
            self.config.max_grad_norm,
            self.summed_over as f64,
        )?;
        self.grad_scale = Some(scale);
        Ok(norm)
    }

    /// `optimizer.step()`: one AdamW update of every group at the current learning rate.
    /// Applies the clipping of [`FusedAdamW::clip_grad_norm`] (or, without it, the mean over
    /// ranks) inside the update; afterwards the `.grad` tensors hold what the update used.
    pub fn step(&mut self) -> Result<()> {
        self.gather()?;
        let scale = match self.grad_scale.take() {
            Some(scale) => Some(scale),
            None if self.summed_over > 1 => Some(Tensor::f_full(
                [],
                self.summed_over as f64,
                (Kind::Float, self.device()),
            )?),
            None => None,
        };
        self.summed_over = 1;
        let _ = tch::no_grad(|| self.step.f_add_scalar_(1.0))?;
        for g in &self.groups {
            ffi::fused_adamw(
                &g.params,
                &g.exp_avgs,
                &g.exp_avg_sqs,
                &self.step,
                scale.as_ref(),
                AdamWStep {
                    lr: self.lr,
                    beta1: self.config.beta1,
                    beta2: self.config.beta2,
                    weight_decay: g.weight_decay,
                    eps: self.config.eps,
                },
            )?;
        }
        Ok(())
    }
}

impl FusedAdamW {
    /// The optimizer's state as named tensors (moments per parameter, in the var store's
    /// order, and the step counter), for a training checkpoint.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut named = vec![("step".to_string(), self.step.shallow_clone())];
        for (g, group) in self.groups.iter().enumerate() {
            for (i, (m, v)) in group.exp_avgs.iter().zip(&group.exp_avg_sqs).enumerate() {
                named.push((format!("group{g}.{i}.exp_avg"), m.shallow_clone()));
                named.push((format!("group{g}.{i}.exp_avg_sq"), v.shallow_clone()));
            }
        }
        if let Some(scaler) = &self.scaler {
            named.extend(scaler.state());
        }
        named
    }

    /// Restores [`FusedAdamW::state`]; every tensor must be present with its parameter's shape
    /// (a checkpoint of another model is refused, naming the tensor). The loss scale is
    /// restored when both the checkpoint and this optimizer have one.
    pub fn load_state(&mut self, state: &std::collections::HashMap<String, Tensor>) -> Result<()> {
        let get = |name: &str, like: &Tensor| -> Result<Tensor> {
            let t = state
                .get(name)
                .ok_or_else(|| anyhow::anyhow!("optimizer state has no tensor {name}"))?;
            if t.size() != like.size() {
                bail!(
                    "optimizer state {name} has shape {:?}, the model needs {:?}",
                    t.size(),
                    like.size()
                );
            }
            Ok(t.to_kind(Kind::Float))
        };
        tch::no_grad(|| -> Result<()> {
            self.step.copy_(&get("step", &self.step)?);
            for (g, group) in self.groups.iter().enumerate() {
                for (i, (m, v)) in group.exp_avgs.iter().zip(&group.exp_avg_sqs).enumerate() {
                    m.shallow_clone()
                        .copy_(&get(&format!("group{g}.{i}.exp_avg"), m)?);
                    v.shallow_clone()
                        .copy_(&get(&format!("group{g}.{i}.exp_avg_sq"), v)?);
                }
            }
            Ok(())
        })?;
        if let Some(scaler) = &mut self.scaler {
            scaler.load_state(state)?;
        }
        Ok(())
    }
}
