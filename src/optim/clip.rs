//! `torch.nn.utils.clip_grad_norm_` in a fixed number of ATen calls.

use anyhow::Result;
use tch::Tensor;

use crate::runtime::ffi;

/// Scales all gradients so their global L2 norm is at most `max_norm` and returns the norm
/// before clipping as a device scalar.
///
/// PyTorch's foreach path: `_foreach_norm`, `stack`, `linalg_vector_norm`, the clamped
/// coefficient and one `_foreach_mul_`, whatever the number of tensors; nothing is read back
/// to the host. Parameters without a gradient are skipped.
pub fn clip_grad_norm(params: &[Tensor], max_norm: f64) -> Result<Tensor> {
    ffi::clip_grad_norm(params, max_norm)
}

/// Sets the gradients of `params` to zero in one fused call (what `optimizer.zero_grad()` does
/// for the optimizer's own parameters).
pub fn zero_grad(params: &[Tensor]) -> Result<()> {
    ffi::zero_grad(params)
}
