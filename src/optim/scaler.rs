//! Dynamic loss scaling for float16 training, as `torch.amp.GradScaler` does it.
//!
//! float16 keeps about five significant digits and nothing below 6e-8, so small gradients of
//! an fp16 forward pass round to zero. The loss is multiplied by a large scale before
//! backward, which lifts the gradients into fp16's range; before clipping they are divided
//! by it again (`unscale_`), and any inf or NaN among them means the scale was too large:
//! that step is skipped (no optimizer or schedule step) and the scale halved. After
//! `growth_interval` clean steps in a row it doubles. The scale and the count of clean steps
//! are two device tensors, updated by `_amp_update_scale_` without reading them back; only the
//! "was there an inf" flag is read, once a step, to decide on the update (as `GradScaler.step`
//! reads it when the gradients were unscaled for clipping).
//!
//! Under data parallel the flag needs no collective of its own: the gradients are summed over
//! the ranks before unscaling, and an inf or NaN on any rank is in the sum every rank unscales.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::runtime::ffi;

/// `GradScaler`'s settings; the defaults are PyTorch's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LossScaleConfig {
    /// The first scale (`init_scale`, 2^16).
    pub init_scale: f64,
    /// The scale's factor after `growth_interval` clean steps (2).
    pub growth_factor: f64,
    /// The scale's factor after a step with an inf or NaN gradient (0.5).
    pub backoff_factor: f64,
    /// Clean steps in a row before the scale grows (2000).
    pub growth_interval: usize,
}

impl Default for LossScaleConfig {
    fn default() -> Self {
        LossScaleConfig {
            init_scale: 65536.0,
            growth_factor: 2.0,
            backoff_factor: 0.5,
            growth_interval: 2000,
        }
    }
}

impl LossScaleConfig {
    /// Settings that make sense: a positive finite scale, growth above 1, backoff in (0, 1).
    pub fn validate(&self) -> Result<()> {
        if !(self.init_scale.is_finite() && self.init_scale > 0.0) {
            bail!(
                "initial loss scale {} must be a finite number > 0",
                self.init_scale
            );
        }
        if !(self.growth_factor.is_finite() && self.growth_factor > 1.0) {
            bail!(
                "loss-scale growth factor {} must be > 1",
                self.growth_factor
            );
        }
        if !(self.backoff_factor > 0.0 && self.backoff_factor < 1.0) {
            bail!(
                "loss-scale backoff factor {} must lie in (0, 1)",
                self.backoff_factor
            );
        }
        if self.growth_interval == 0 {
            bail!("loss-scale growth interval must be at least 1 step");
        }
        Ok(())
    }
}

/// The running state of loss scaling; see the module documentation.
pub struct LossScaler {
    config: LossScaleConfig,
    /// The current scale (0-dim float32 on the device).
    scale: Tensor,
    /// Clean steps since the scale last changed (0-dim int32, `_growth_tracker`).
    growth_tracker: Tensor,
    /// 1.0 when the last unscaled gradients held an inf or NaN (0-dim float32).
    found_inf: Tensor,
}

impl LossScaler {
    pub fn new(config: LossScaleConfig, device: Device) -> Result<Self> {
        config.validate()?;
        Ok(LossScaler {
            config,
            scale: Tensor::f_full([], config.init_scale, (Kind::Float, device))?,
            growth_tracker: Tensor::f_zeros([], (Kind::Int, device))?,
            found_inf: Tensor::f_zeros([], (Kind::Float, device))?,
        })
    }

    pub fn config(&self) -> &LossScaleConfig {
        &self.config
    }

    /// `scaler.scale(loss)`: the loss times the current scale, for backward.
    pub fn scaled(&self, loss: &Tensor) -> Tensor {
        loss * &self.scale
    }

    /// The current scale (reads it back from the device).
    pub fn scale(&self) -> f64 {
        self.scale.double_value(&[])
    }

    /// `scaler.unscale_(optimizer)`: divides the gradients of `params` by the scale in place
    /// (multiplying by its float32 reciprocal, as PyTorch does) and returns whether any holds an
    /// inf or a NaN, in which case the step must be skipped. Reads one flag back.
    pub fn unscale(&mut self, params: &[Tensor]) -> Result<bool> {
        let _ = self.found_inf.f_zero_()?;
        let inv_scale = self
            .scale
            .to_kind(Kind::Double)
            .reciprocal()
            .to_kind(Kind::Float);
        ffi::unscale_grads(params, &self.found_inf, &inv_scale)?;
        Ok(self.found_inf.double_value(&[]) != 0.0)
    }

    /// `scaler.update()`: halves the scale after an inf or NaN, doubles it after
    /// `growth_interval` clean steps (`_amp_update_scale_`, on the device).
    pub fn update(&mut self) -> Result<()> {
        let _ = self.scale.f_internal_amp_update_scale_(
            &self.growth_tracker,
            &self.found_inf,
            self.config.growth_factor,
            self.config.backoff_factor,
            self.config.growth_interval as i64,
        )?;
        Ok(())
    }

    /// The scale and the clean-step count, for a training checkpoint (resuming restores both,
    /// so a resumed run scales as the uninterrupted one).
    pub fn state(&self) -> Vec<(String, Tensor)> {
        vec![
            ("loss_scaler.scale".into(), self.scale.shallow_clone()),
            (
                "loss_scaler.growth_tracker".into(),
                self.growth_tracker.to_kind(Kind::Float),
            ),
        ]
    }

    /// Restores [`LossScaler::state`]; `false` when `state` holds none (a checkpoint written
    /// without loss scaling: the scale starts afresh).
    pub fn load_state(
        &mut self,
        state: &std::collections::HashMap<String, Tensor>,
    ) -> Result<bool> {
        let (Some(scale), Some(tracker)) = (
            state.get("loss_scaler.scale"),
            state.get("loss_scaler.growth_tracker"),
        ) else {
            return Ok(false);
        };
        tch::no_grad(|| -> Result<()> {
            self.scale.f_copy_(&scale.to_kind(Kind::Float))?;
            self.growth_tracker.f_copy_(&tracker.to_kind(Kind::Int))?;
            Ok(())
        })?;
        Ok(true)
    }
}
