//! AdamW with the tutorial's two weight-decay groups, as `torch.optim.AdamW(fused=True)`.
//!
//! Named `FusedAdamW` so it is not mistaken for `tch::nn::AdamW`, libtorch's per-tensor loop.
//! The state is plain tensors (two moments per parameter and one step counter), and one
//! optimizer step is a fixed number of ATen calls whatever the number of parameter tensors:
//! one step increment and one `_fused_adamw_` per group.

use anyhow::{bail, Result};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use super::AdamWConfig;
use crate::model::bert::{DECAY, NO_DECAY};
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
        })
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

    /// The gradients the last backward pass left, in parameter order (those without one are
    /// left out), sharing storage with the parameters' `.grad`.
    pub fn gradients(&self) -> Vec<Tensor> {
        self.params
            .iter()
            .map(Tensor::grad)
            .filter(Tensor::defined)
            .collect()
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

    /// `model.zero_grad()`: drops every gradient (set to none, as PyTorch does by default).
    pub fn zero_grad(&mut self) -> Result<()> {
        ffi::zero_grad(&self.params)
    }

    /// `clip_grad_norm_(model.parameters(), max_grad_norm)`: scales the gradients the last
    /// backward pass left so their global norm is at most the configured `max_grad_norm`.
    /// Returns the norm before clipping as a device scalar; reading it forces a host sync, so
    /// the caller decides when that is worth it.
    pub fn clip_grad_norm(&mut self) -> Result<Tensor> {
        super::clip::clip_grad_norm(&self.params, self.config.max_grad_norm)
    }

    /// `optimizer.step()`: one AdamW update of every group at the current learning rate.
    pub fn step(&mut self) -> Result<()> {
        let _ = tch::no_grad(|| self.step.f_add_scalar_(1.0))?;
        for g in &self.groups {
            ffi::fused_adamw(
                &g.params,
                &g.exp_avgs,
                &g.exp_avg_sqs,
                &self.step,
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
        named
    }

    /// Restores [`FusedAdamW::state`]; every tensor must be present with its parameter's shape
    /// (a checkpoint of another model is refused, naming the tensor).
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
        })
    }
}
