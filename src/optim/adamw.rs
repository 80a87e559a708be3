//! AdamW with the tutorial's two weight-decay groups, as `torch.optim.AdamW(fused=True)`.
//!
//! The state is plain tensors (two moments per parameter and one step counter), and one
//! optimizer step is a fixed number of ATen calls whatever the number of parameter tensors:
//! clipping (see [`super::clip`]), one step increment and one `_fused_adamw_` per group.

use anyhow::{bail, Result};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use super::schedule::linear_schedule;
use super::AdamWConfig;
use crate::ffi::{self, AdamWStep};
use crate::model::bert::{DECAY, NO_DECAY};

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

/// AdamW plus schedule plus clipping, stepping a model's var store.
pub struct AdamW {
    groups: Vec<Group>,
    /// Every trainable parameter, for clipping and `zero_grad`.
    params: Vec<Tensor>,
    /// Steps taken, as a 0-dim float tensor on the parameters' device (the fused kernel reads
    /// it there; incremented before each update, as PyTorch does).
    step: Tensor,
    config: AdamWConfig,
    total_steps: usize,
    steps_done: usize,
}

impl AdamW {
    /// Groups the var store's trainable variables by their var-store group: [`DECAY`] takes
    /// `config.weight_decay`, [`NO_DECAY`] none.
    pub fn new(vs: &VarStore, config: AdamWConfig, total_steps: usize) -> Result<Self> {
        crate::device::ensure_cuda_backend();
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
        Ok(AdamW {
            groups,
            params,
            step: Tensor::zeros([], (Kind::Float, device)),
            config,
            total_steps,
            steps_done: 0,
        })
    }

    /// Learning rate the next step will use.
    pub fn lr(&self) -> f64 {
        self.config.lr
            * linear_schedule(self.steps_done, self.config.warmup_steps, self.total_steps)
    }

    pub fn config(&self) -> &AdamWConfig {
        &self.config
    }

    /// Number of parameter tensors it updates.
    pub fn num_tensors(&self) -> usize {
        self.params.len()
    }

    pub fn device(&self) -> Device {
        self.step.device()
    }

    /// `optimizer.zero_grad()` (set to none), `loss.backward()`, then [`AdamW::step`].
    ///
    /// Returns the gradient norm before clipping as a device scalar; reading it forces a sync,
    /// so the caller decides when that is worth it.
    pub fn backward_step(&mut self, loss: &Tensor) -> Result<Tensor> {
        ffi::zero_grad(&self.params)?;
        loss.f_backward()?;
        self.step()
    }

    /// Clipping to `max_grad_norm`, one AdamW update of every group and one schedule step, on
    /// the gradients the last backward pass left. Returns the norm before clipping.
    pub fn step(&mut self) -> Result<Tensor> {
        let norm = super::clip::clip_grad_norm(&self.params, self.config.max_grad_norm)?;
        let lr = self.lr();
        let _ = tch::no_grad(|| self.step.f_add_scalar_(1.0))?;
        for g in &self.groups {
            ffi::fused_adamw(
                &g.params,
                &g.exp_avgs,
                &g.exp_avg_sqs,
                &self.step,
                AdamWStep {
                    lr,
                    beta1: self.config.beta1,
                    beta2: self.config.beta2,
                    weight_decay: g.weight_decay,
                    eps: self.config.eps,
                },
            )?;
        }
        self.steps_done += 1;
        Ok(norm)
    }

    pub fn steps_done(&self) -> usize {
        self.steps_done
    }
}

impl AdamW {
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

    /// Restores [`AdamW::state`] and the schedule position; every tensor must be present with
    /// its parameter's shape (a checkpoint of another model is refused, naming the tensor).
    pub fn load_state(
        &mut self,
        state: &std::collections::HashMap<String, Tensor>,
        steps_done: usize,
    ) -> Result<()> {
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
        self.steps_done = steps_done;
        Ok(())
    }
}
