//! Safe wrappers over `csrc/shim.cpp`: the ATen calls tch 0.24 does not bind.
//!
//! This module holds the crate's only foreign calls into the shim. Each wrapper names the ATen
//! call behind it; the shim catches every C++ exception and reports it through
//! `bf_last_error`, so a failure here is an `Err`, never an abort.

use std::ffi::{c_int, CStr, CString};

use anyhow::{bail, Result};
use tch::{Device, Kind, Tensor};
use torch_sys::C_tensor;

mod raw {
    use std::ffi::{c_char, c_int};
    use torch_sys::C_tensor;

    extern "C" {
        pub fn bf_last_error() -> *const c_char;
        pub fn bf_unscale_grads(
            params: *const *const C_tensor,
            n: usize,
            found_inf: *const C_tensor,
            inv_scale: *const C_tensor,
        ) -> c_int;
        pub fn bf_zero_grad(params: *const *const C_tensor, n: usize) -> c_int;
        pub fn bf_clip_grad_norm(
            params: *const *const C_tensor,
            n: usize,
            max_norm: f64,
            total: *mut *mut C_tensor,
        ) -> c_int;
        pub fn bf_fused_adamw(
            params: *const *const C_tensor,
            exp_avgs: *const *const C_tensor,
            exp_avg_sqs: *const *const C_tensor,
            n: usize,
            step: *const C_tensor,
            lr: f64,
            beta1: f64,
            beta2: f64,
            weight_decay: f64,
            eps: f64,
            grad_scale: *const C_tensor,
        ) -> c_int;
        pub fn bf_grads_into(
            params: *const *const C_tensor,
            n: usize,
            flat: *const C_tensor,
            zero: bool,
        ) -> c_int;
        pub fn bf_clip_scale(
            params: *const *const C_tensor,
            n: usize,
            flat: *const C_tensor,
            max_norm: f64,
            world: f64,
            norm: *mut *mut C_tensor,
            scale: *mut *mut C_tensor,
        ) -> c_int;
        pub fn bf_autocast_get(device_type: c_int, enabled: *mut bool, dtype: *mut c_int) -> c_int;
        pub fn bf_autocast_set(
            device_type: c_int,
            enabled: bool,
            dtype: c_int,
            enter: bool,
        ) -> c_int;
        pub fn bf_set_matmul_precision(precision: *const c_char) -> c_int;
        pub fn bf_op_counter_start() -> c_int;
        pub fn bf_bernoulli_(tensor: *mut C_tensor, p: f64) -> c_int;
        pub fn bf_op_counter_stop(top: *mut i64, all: *mut i64, host_reads: *mut i64) -> c_int;
    }

    /// `csrc/distributed.cpp`'s process group (opaque here).
    #[repr(C)]
    pub struct BfGroup {
        _private: [u8; 0],
    }

    extern "C" {
        pub fn bf_pg_new_gloo(
            host: *const c_char,
            port: c_int,
            rank: c_int,
            world: c_int,
            store_hosted: c_int,
            loopback: c_int,
            timeout_ms: i64,
            out: *mut *mut BfGroup,
        ) -> c_int;
        pub fn bf_pg_new_nccl(
            host: *const c_char,
            port: c_int,
            rank: c_int,
            world: c_int,
            store_hosted: c_int,
            timeout_ms: i64,
            device: c_int,
            out: *mut *mut BfGroup,
        ) -> c_int;
        pub fn bf_nccl_available() -> c_int;
        pub fn bf_pg_free(group: *mut BfGroup);
        pub fn bf_pg_allreduce_sum(
            group: *mut BfGroup,
            tensors: *const *const C_tensor,
            n: usize,
        ) -> c_int;
        pub fn bf_pg_broadcast(group: *mut BfGroup, tensor: *const C_tensor, root: c_int) -> c_int;
        pub fn bf_pg_allgather(
            group: *mut BfGroup,
            tensor: *const C_tensor,
            out: *mut *mut C_tensor,
        ) -> c_int;
        pub fn bf_pg_barrier(group: *mut BfGroup) -> c_int;
    }
}

/// A c10d Gloo process group (`csrc/distributed.cpp`), freed when dropped.
pub struct Group(std::ptr::NonNull<raw::BfGroup>);

// SAFETY: the group is a heap object of torch's (a store and a backend, both thread-safe
// c10d objects); the pointer is owned by this value alone and only used through `&self`.
unsafe impl Send for Group {}

/// The rendezvous and the Gloo group of `world` ranks (see `bf_pg_new_gloo`).
#[allow(clippy::too_many_arguments)]
pub fn gloo_group(
    host: &str,
    port: u16,
    rank: usize,
    world: usize,
    store_hosted: bool,
    loopback: bool,
    timeout_ms: i64,
) -> Result<Group> {
    let c = CString::new(host)?;
    let mut out: *mut raw::BfGroup = std::ptr::null_mut();
    // SAFETY: `c` is a NUL-terminated string alive for the call; on success the shim stores a
    // `new`ed group in `out`, which `Group` owns from here on.
    check(
        unsafe {
            raw::bf_pg_new_gloo(
                c.as_ptr(),
                c_int::from(port),
                rank as c_int,
                world as c_int,
                c_int::from(store_hosted),
                c_int::from(loopback),
                timeout_ms,
                &mut out,
            )
        },
        "the process group (c10d TCPStore + ProcessGroupGloo)",
    )?;
    std::ptr::NonNull::new(out)
        .map(Group)
        .ok_or_else(|| anyhow::anyhow!("the process group was not created"))
}

/// The rendezvous and an NCCL group of `world` ranks, this one on `cuda:device`.
pub fn nccl_group(
    host: &str,
    port: u16,
    rank: usize,
    world: usize,
    store_hosted: bool,
    timeout_ms: i64,
    device: usize,
) -> Result<Group> {
    let c = CString::new(host)?;
    let mut out: *mut raw::BfGroup = std::ptr::null_mut();
    // SAFETY: as for `gloo_group`.
    check(
        unsafe {
            raw::bf_pg_new_nccl(
                c.as_ptr(),
                c_int::from(port),
                rank as c_int,
                world as c_int,
                c_int::from(store_hosted),
                timeout_ms,
                device as c_int,
                &mut out,
            )
        },
        "the process group (c10d TCPStore + ProcessGroupNCCL)",
    )?;
    std::ptr::NonNull::new(out)
        .map(Group)
        .ok_or_else(|| anyhow::anyhow!("the process group was not created"))
}

/// Whether this build has the NCCL process group (see `csrc/nccl.cpp`).
pub fn nccl_available() -> bool {
    // SAFETY: no arguments, no state.
    unsafe { raw::bf_nccl_available() == 1 }
}

impl Drop for Group {
    fn drop(&mut self) {
        // SAFETY: the pointer came from `bf_pg_new_gloo` and is freed once, here.
        unsafe { raw::bf_pg_free(self.0.as_ptr()) }
    }
}

impl Group {
    /// `all_reduce(SUM)` of every tensor, in place, as one collective.
    pub fn allreduce_sum(&self, tensors: &[Tensor]) -> Result<()> {
        let ts = pointers(tensors);
        // SAFETY: live group; `ts` points to tensors borrowed for the call.
        check(
            unsafe { raw::bf_pg_allreduce_sum(self.0.as_ptr(), ts.as_ptr(), ts.len()) },
            "all_reduce",
        )
    }

    /// Rank `root`'s `tensor` copied into every rank's, in place.
    pub fn broadcast(&self, tensor: &Tensor, root: usize) -> Result<()> {
        // SAFETY: live group and tensor for the call.
        check(
            unsafe { raw::bf_pg_broadcast(self.0.as_ptr(), tensor.as_ptr(), root as c_int) },
            "broadcast",
        )
    }

    /// Every rank's `tensor`, stacked in rank order.
    pub fn allgather(&self, tensor: &Tensor) -> Result<Tensor> {
        let mut out: *mut C_tensor = std::ptr::null_mut();
        // SAFETY: live group and tensor; on success `out` is a `new`ed tensor we take over.
        check(
            unsafe { raw::bf_pg_allgather(self.0.as_ptr(), tensor.as_ptr(), &mut out) },
            "all_gather",
        )?;
        if out.is_null() {
            bail!("all_gather returned no tensor");
        }
        // SAFETY: non-null, freshly allocated by the shim and owned by nobody else.
        Ok(unsafe { Tensor::from_ptr(out) })
    }

    pub fn barrier(&self) -> Result<()> {
        // SAFETY: live group.
        check(unsafe { raw::bf_pg_barrier(self.0.as_ptr()) }, "barrier")
    }
}

/// Turns a shim status into a `Result`, fetching the C++ message on failure.
fn check(status: c_int, what: &str) -> Result<()> {
    if status == 0 {
        return Ok(());
    }
    // SAFETY: `bf_last_error` returns a pointer to this thread's NUL-terminated message, which
    // stays valid until the next shim call on this thread; it is copied out at once.
    let message = unsafe { CStr::from_ptr(raw::bf_last_error()) }
        .to_string_lossy()
        .into_owned();
    bail!("{what} failed: {message}")
}

fn pointers(tensors: &[Tensor]) -> Vec<*const C_tensor> {
    tensors.iter().map(Tensor::as_ptr).collect()
}

/// `optimizer.zero_grad(set_to_none=True)`: drops the gradients of `params`.
pub fn zero_grad(params: &[Tensor]) -> Result<()> {
    let ps = pointers(params);
    // SAFETY: `ps` holds `ps.len()` pointers to live tensors borrowed from `params` for the
    // whole call; the shim only resets their gradient fields.
    check(
        unsafe { raw::bf_zero_grad(ps.as_ptr(), ps.len()) },
        "zero_grad",
    )
}

/// `GradScaler.unscale_`: multiplies every gradient of `params` by `inv_scale` in place and
/// sets `found_inf` to 1 when any holds an inf or a NaN
/// (`_amp_foreach_non_finite_check_and_unscale_`). Both are 0-dim float tensors on the
/// gradients' device; no host sync.
pub fn unscale_grads(params: &[Tensor], found_inf: &Tensor, inv_scale: &Tensor) -> Result<()> {
    let ps = pointers(params);
    // SAFETY: `ps`, `found_inf` and `inv_scale` point to live tensors borrowed for the call;
    // the shim writes only into the gradients and `found_inf`.
    check(
        unsafe {
            raw::bf_unscale_grads(
                ps.as_ptr(),
                ps.len(),
                found_inf.as_ptr(),
                inv_scale.as_ptr(),
            )
        },
        "unscaling the gradients (_amp_foreach_non_finite_check_and_unscale_)",
    )
}

/// `clip_grad_norm_(params, max_norm)` through `_foreach_norm` and `_foreach_mul_`, without a
/// host sync. Returns the total norm before clipping as a 0-dim tensor on the device.
pub fn clip_grad_norm(params: &[Tensor], max_norm: f64) -> Result<Tensor> {
    let ps = pointers(params);
    let mut total: *mut C_tensor = std::ptr::null_mut();
    // SAFETY: `ps` points to live tensors borrowed for the call; on success the shim stores in
    // `total` a tensor allocated with `new`, which `Tensor::from_ptr` takes over (tch frees it
    // with `delete`).
    check(
        unsafe { raw::bf_clip_grad_norm(ps.as_ptr(), ps.len(), max_norm, &mut total) },
        "clip_grad_norm (_foreach_norm / _foreach_mul_)",
    )?;
    if total.is_null() {
        bail!("clip_grad_norm returned no norm");
    }
    // SAFETY: non-null, freshly allocated by the shim and owned by nobody else.
    Ok(unsafe { Tensor::from_ptr(total) })
}

/// AdamW hyper-parameters of one fused update.
#[derive(Debug, Clone, Copy)]
pub struct AdamWStep {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub weight_decay: f64,
    pub eps: f64,
}

/// Points the gradients of `params` at consecutive slices of the 1-d `flat` (which holds exactly
/// their elements). With `zero` the buffer is zeroed first, for the next backward pass to
/// accumulate into; without, a gradient that is not its slice yet is copied in (and a missing
/// one zeroed), so `flat` holds every gradient. One `zero_` (or nothing) when already attached.
pub fn grads_into(params: &[Tensor], flat: &Tensor, zero: bool) -> Result<()> {
    let ps = pointers(params);
    // SAFETY: `ps` points to live tensors borrowed for the call and `flat` is live; the shim
    // replaces the parameters' gradient fields and writes into `flat`, keeping no pointer.
    check(
        unsafe { raw::bf_grads_into(ps.as_ptr(), ps.len(), flat.as_ptr(), zero) },
        "flat gradients",
    )
}

/// The norm of the mean of `world` ranks' summed gradients (before clipping) and the divisor
/// that averages and clips them to `max_norm` inside the fused AdamW kernel. With `flat` (the
/// buffer the gradients of `params` are views into) the norm is one `dot`; without, it is
/// `clip_grad_norm_`'s `_foreach_norm` over the gradients of `params`.
pub fn clip_scale(
    params: &[Tensor],
    flat: Option<&Tensor>,
    max_norm: f64,
    world: f64,
) -> Result<(Tensor, Tensor)> {
    let ps = pointers(params);
    let mut norm: *mut C_tensor = std::ptr::null_mut();
    let mut scale: *mut C_tensor = std::ptr::null_mut();
    // SAFETY: `ps` and `flat` (null when absent) point to live tensors borrowed for the call;
    // on success the shim stores in `norm` and `scale` tensors allocated with `new`, which
    // `Tensor::from_ptr` takes over.
    check(
        unsafe {
            raw::bf_clip_scale(
                ps.as_ptr(),
                ps.len(),
                flat.map_or(std::ptr::null(), Tensor::as_ptr),
                max_norm,
                world,
                &mut norm,
                &mut scale,
            )
        },
        "gradient clipping (the global norm)",
    )?;
    if norm.is_null() || scale.is_null() {
        bail!("gradient clipping returned no norm");
    }
    // SAFETY: non-null, freshly allocated by the shim and owned by nobody else.
    Ok(unsafe { (Tensor::from_ptr(norm), Tensor::from_ptr(scale)) })
}

/// `at::_fused_adamw_` over one parameter group (parameters without a gradient are skipped).
/// `step` is the group's 0-dim float step counter, already incremented for this update. With
/// `grad_scale` (a 0-dim float tensor on the parameters' device) every gradient is divided by
/// it first, in place.
pub fn fused_adamw(
    params: &[Tensor],
    exp_avgs: &[Tensor],
    exp_avg_sqs: &[Tensor],
    step: &Tensor,
    grad_scale: Option<&Tensor>,
    h: AdamWStep,
) -> Result<()> {
    if exp_avgs.len() != params.len() || exp_avg_sqs.len() != params.len() {
        bail!(
            "fused AdamW: {} parameters but {} / {} moment tensors",
            params.len(),
            exp_avgs.len(),
            exp_avg_sqs.len()
        );
    }
    let (ps, ms, vs) = (pointers(params), pointers(exp_avgs), pointers(exp_avg_sqs));
    // SAFETY: three arrays of `ps.len()` pointers to live tensors, one live step tensor and an
    // optional live scale (null when absent), all borrowed for the call; the shim updates
    // their storage in place and keeps no pointer.
    check(
        unsafe {
            raw::bf_fused_adamw(
                ps.as_ptr(),
                ms.as_ptr(),
                vs.as_ptr(),
                ps.len(),
                step.as_ptr(),
                h.lr,
                h.beta1,
                h.beta2,
                h.weight_decay,
                h.eps,
                grad_scale.map_or(std::ptr::null(), Tensor::as_ptr),
            )
        },
        "fused AdamW (at::_fused_adamw_)",
    )
}

fn device_type(device: Device) -> Result<c_int> {
    match device {
        Device::Cpu => Ok(0),
        Device::Cuda(_) => Ok(1),
        other => bail!("autocast is only wired up for the CPU and CUDA, not {other:?}"),
    }
}

fn scalar_type(kind: Kind) -> Result<c_int> {
    Ok(match kind {
        Kind::Half => 5,
        Kind::Float => 6,
        Kind::BFloat16 => 15,
        other => bail!("autocast dtype {other:?} is not one of Half, Float, BFloat16"),
    })
}

fn kind_of(code: c_int) -> Kind {
    match code {
        5 => Kind::Half,
        15 => Kind::BFloat16,
        _ => Kind::Float,
    }
}

/// This thread's autocast flag and dtype for `device` (`is_autocast_enabled`,
/// `get_autocast_dtype`).
pub fn autocast_state(device: Device) -> Result<(bool, Kind)> {
    let dev = device_type(device)?;
    let (mut enabled, mut dtype) = (false, 0);
    // SAFETY: both out-pointers are valid locals for the duration of the call.
    check(
        unsafe { raw::bf_autocast_get(dev, &mut enabled, &mut dtype) },
        "reading the autocast state",
    )?;
    Ok((enabled, kind_of(dtype)))
}

/// Enters (`enter`) or leaves an autocast region on this thread: `set_autocast_dtype`,
/// `set_autocast_enabled`, the nesting count, and `clear_cache` when the outermost one ends.
pub fn autocast_set(device: Device, enabled: bool, kind: Kind, enter: bool) -> Result<()> {
    let (dev, dtype) = (device_type(device)?, scalar_type(kind)?);
    // SAFETY: plain values only.
    check(
        unsafe { raw::bf_autocast_set(dev, enabled, dtype, enter) },
        "setting autocast",
    )
}

/// `torch.set_float32_matmul_precision`: "highest" (fp32), "high" (TF32 on CUDA).
pub fn set_matmul_precision(precision: &str) -> Result<()> {
    let c = CString::new(precision)?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    check(
        unsafe { raw::bf_set_matmul_precision(c.as_ptr()) },
        "setting the float32 matmul precision",
    )
}

/// ATen operator calls counted by [`count_ops`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpCount {
    /// Calls made directly by the code under count (what it dispatches).
    pub top_level: i64,
    /// Also the calls operators make inside themselves (on the CPU, `_foreach_*` falls back to
    /// one operator per tensor, which CUDA runs as multi-tensor kernels).
    pub all: i64,
    /// Calls among `top_level` that make the host wait for the device (`item`,
    /// `_local_scalar_dense`, `nonzero`, `is_nonzero`, `equal`): a GPU step should make none.
    pub host_reads: i64,
}

/// Runs `f` and counts the ATen operators it dispatches on this thread, through libtorch's
/// `RecordFunction` callbacks (what its profiler observes).
pub fn count_ops<R>(f: impl FnOnce() -> R) -> Result<(R, OpCount)> {
    // SAFETY: no arguments; the shim installs a thread-local callback.
    check(
        unsafe { raw::bf_op_counter_start() },
        "starting the op counter",
    )?;
    let out = f();
    let (mut top_level, mut all, mut host_reads) = (0, 0, 0);
    // SAFETY: the three out-pointers are valid locals for the duration of the call.
    check(
        unsafe { raw::bf_op_counter_stop(&mut top_level, &mut all, &mut host_reads) },
        "stopping the op counter",
    )?;
    Ok((
        out,
        OpCount {
            top_level,
            all,
            host_reads,
        },
    ))
}

/// `tensor.bernoulli_(p)` from the default CPU generator: the same values, and the generator
/// left where libtorch's kernel leaves it, drawn several times faster where libtorch draws
/// them one at a time (a CPU without MKL's path; see `csrc/dropout.cpp`). Other tensors go to
/// libtorch's `bernoulli_` itself.
pub fn bernoulli_(tensor: &mut Tensor, p: f64) -> Result<()> {
    // SAFETY: `tensor` is a live tensor borrowed mutably for the call; the shim fills it in
    // place and keeps no pointer.
    check(
        unsafe { raw::bf_bernoulli_(tensor.as_mut_ptr(), p) },
        "bernoulli_",
    )
}
