//! Numeric precision of training: fp32, TF32 matmuls, or bf16 autocast.
//!
//! * `fp32`: everything in float32 (`float32_matmul_precision("highest")`).
//! * `tf32`: float32 tensors, but CUDA matmuls and convolutions may use TensorFloat-32
//!   (`float32_matmul_precision("high")`; Ampere and later). On the CPU this is fp32.
//! * `bf16`: the forward pass runs under autocast with bfloat16 (`torch.autocast(device,
//!   dtype=torch.bfloat16)`): matmuls and linear layers compute in bf16, while the master
//!   weights, the gradients and the optimizer state stay float32; the logits are cast back to
//!   float32 before the loss, and the backward pass runs outside autocast as PyTorch advises.
//!
//! tch 0.24 can toggle only CUDA fp16 autocast, so both switches go through the C++ shim.

use std::fmt;
use std::str::FromStr;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind};

use crate::runtime::ffi;

/// How the training step computes (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    Fp32,
    Tf32,
    Bf16,
}

impl Precision {
    pub const ALL: [Precision; 3] = [Precision::Fp32, Precision::Tf32, Precision::Bf16];

    /// The default for a device: fp32 on the CPU (bf16 matmuls are slower than fp32 on CPUs
    /// without AMX, as measured on the project's machine); TF32 on CUDA, which keeps fp32's
    /// range and most of its precision. Whether bf16 matches fp32's MCC on a GPU is for
    /// `scripts/gpu-check` to measure; until then it is opt-in.
    pub fn default_for(device: Device) -> Self {
        match device {
            Device::Cuda(_) => Precision::Tf32,
            _ => Precision::Fp32,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Tf32 => "tf32",
            Precision::Bf16 => "bf16",
        }
    }

    /// Sets libtorch's float32 matmul precision for this setting (a process-wide switch).
    pub fn apply(self, device: Device) -> Result<()> {
        let level = match (self, device) {
            (Precision::Tf32, Device::Cuda(_)) => "high",
            _ => "highest",
        };
        ffi::set_matmul_precision(level)
    }

    /// Enters bf16 autocast on this thread for `device` when the setting asks for it; the
    /// region ends when the guard drops. `None` for fp32 and TF32.
    pub fn autocast(self, device: Device) -> Result<Option<Autocast>> {
        match self {
            Precision::Bf16 => Autocast::enter(device, Kind::BFloat16).map(Some),
            _ => Ok(None),
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Precision {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "fp32" | "float32" => Ok(Precision::Fp32),
            "tf32" => Ok(Precision::Tf32),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            other => bail!("unknown precision {other:?}: use fp32, tf32 or bf16"),
        }
    }
}

/// An autocast region on the current thread (`with torch.autocast(...)`): restores the
/// previous flag and dtype when dropped, and clears the cast cache when the outermost region
/// ends, so weights the optimizer updated are cast afresh.
pub struct Autocast {
    device: Device,
    previous: (bool, Kind),
}

impl Autocast {
    /// Whether autocast is on for `device`'s type right now (false outside an [`Autocast`]).
    pub fn is_on(device: Device) -> Result<bool> {
        Ok(ffi::autocast_state(device)?.0)
    }

    pub fn enter(device: Device, kind: Kind) -> Result<Self> {
        crate::runtime::device::ensure_cuda_backend();
        let previous = ffi::autocast_state(device)?;
        ffi::autocast_set(device, true, kind, true)?;
        Ok(Autocast { device, previous })
    }
}

impl Drop for Autocast {
    fn drop(&mut self) {
        let (enabled, kind) = self.previous;
        // Leaving can only fail for a device `enter` already accepted; nothing to report then.
        let _ = ffi::autocast_set(self.device, enabled, kind, false);
    }
}
