//! Numeric precision of training: fp32, TF32 matmuls, bf16 autocast, or fp16 autocast with
//! loss scaling.
//!
//! * `fp32`: everything in float32 (`float32_matmul_precision("highest")`).
//! * `tf32`: float32 tensors, but CUDA matmuls and convolutions may use TensorFloat-32
//!   (`float32_matmul_precision("high")`; Ampere and later). On the CPU this is fp32.
//! * `bf16`: the forward pass runs under autocast with bfloat16 (`torch.autocast(device,
//!   dtype=torch.bfloat16)`): matmuls and linear layers compute in bf16, while the master
//!   weights, the gradients and the optimizer state stay float32; the logits are cast back to
//!   float32 before the loss, and the backward pass runs outside autocast as PyTorch advises.
//! * `fp16`: the same with float16 (`torch.autocast(device, dtype=torch.float16)`), for GPUs
//!   with fast float16 but no bfloat16 (Colab's T4, V100, P100). float16's narrow range needs
//!   dynamic loss scaling ([`crate::optim::LossScaler`], as `GradScaler`), which the Trainer
//!   turns on with it. PyTorch 2.11 also autocasts to float16 on the CPU, so it is testable
//!   there (not fast).
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
    Fp16,
}

impl Precision {
    pub const ALL: [Precision; 4] = [
        Precision::Fp32,
        Precision::Tf32,
        Precision::Bf16,
        Precision::Fp16,
    ];

    /// The default for a device: fp32 on the CPU (bf16 and fp16 matmuls are slower than fp32
    /// on CPUs without AMX, as measured on the project's machine); on CUDA bf16 where the GPU
    /// has bfloat16 units (compute capability 8.0 and later: A100, RTX 30xx, L4, H100), fp16
    /// with loss scaling on older ones (T4, V100, P100), and TF32 when the capability cannot be
    /// read (no `nvidia-smi`). [`Precision::reason_for`] says which and why.
    pub fn default_for(device: Device) -> Self {
        Self::choice_for(device).0
    }

    /// Why [`Precision::default_for`] chose what it chose, for the device report.
    pub fn reason_for(device: Device) -> String {
        Self::choice_for(device).1
    }

    fn choice_for(device: Device) -> (Self, String) {
        let index = match device {
            Device::Cuda(i) => i,
            _ => {
                return (
                    Precision::Fp32,
                    "the CPU: bf16 and fp16 matmuls are not faster on most CPUs".into(),
                )
            }
        };
        match crate::runtime::nvidia_smi::compute_capability(index) {
            Some((major, minor)) if major >= 8 => (
                Precision::Bf16,
                format!("compute capability {major}.{minor} has bfloat16: autocast to it"),
            ),
            Some((major, minor)) => (
                Precision::Fp16,
                format!(
                    "compute capability {major}.{minor} has float16 but no bfloat16: \
                     autocast to float16 with loss scaling"
                ),
            ),
            None => (
                Precision::Tf32,
                "the compute capability is unknown (no nvidia-smi): float32 with TF32 matmuls"
                    .into(),
            ),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Tf32 => "tf32",
            Precision::Bf16 => "bf16",
            Precision::Fp16 => "fp16",
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

    /// Enters bf16 or fp16 autocast on this thread for `device` when the setting asks for it;
    /// the region ends when the guard drops. `None` for fp32 and TF32.
    pub fn autocast(self, device: Device) -> Result<Option<Autocast>> {
        match self {
            Precision::Bf16 => Autocast::enter(device, Kind::BFloat16).map(Some),
            Precision::Fp16 => Autocast::enter(device, Kind::Half).map(Some),
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
            "fp16" | "float16" | "half" => Ok(Precision::Fp16),
            other => bail!("unknown precision {other:?}: use fp32, tf32, bf16 or fp16"),
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
        crate::runtime::cuda::ensure_cuda_backend();
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
