// The few ATen calls tch 0.24 does not bind, behind a C ABI for `src/ffi.rs`.
//
// * `bf_zero_grad`, `bf_clip_grad_norm`, `bf_fused_adamw`: the optimizer step in a handful of
//   ATen calls whatever the number of parameter tensors (`_foreach_norm`, `_foreach_mul_`,
//   `_fused_adamw_`), as PyTorch's `clip_grad_norm_` and `AdamW(fused=True)` do.
// * `bf_grads_into`: one flat gradient buffer with every parameter's `.grad` a view into it (as
//   DDP's `gradient_as_bucket_view`), so zeroing, the norm and an all-reduce are one call each.
// * `bf_clip_scale`: clipping folded into the fused AdamW's `grad_scale`.
// * `bf_unscale_grads`: fp16 loss scaling's unscale and inf/NaN check
//   (`_amp_foreach_non_finite_check_and_unscale_`, what `GradScaler.unscale_` calls).
// * `bf_autocast_*`, `bf_set_matmul_precision`: bf16 autocast (per thread, CPU or CUDA) and
//   TF32 matmuls, which tch cannot switch.
// * `bf_op_counter_*`: counts ATen operator calls through libtorch's RecordFunction hooks, so
//   a test can show how many operators one optimizer step dispatches, and that a training step
//   dispatches none that reads a value back from the device.
//
// Tensors arrive as `at::Tensor*` (tch's `C_tensor`). No C++ exception crosses the boundary:
// every function returns 0 on success and 1 on error, with the message in `bf_last_error`.

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <ATen/record_function.h>

#include <stdexcept>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "guarded.hpp"

thread_local std::string bf::last_error;

namespace {

using bf::guarded;
using bf::last_error;

// Parameters that received a gradient, with those gradients (PyTorch skips the others too).
void with_grads(at::Tensor* const* params, size_t n, std::vector<at::Tensor>& ps,
                std::vector<at::Tensor>& gs, std::vector<size_t>* index = nullptr) {
  for (size_t i = 0; i < n; ++i) {
    const at::Tensor& g = params[i]->grad();
    if (!g.defined()) continue;
    ps.push_back(*params[i]);
    gs.push_back(g);
    if (index) index->push_back(i);
  }
}

// Per thread, like the callbacks: tests counting on parallel threads do not mix.
thread_local int64_t ops_top = 0;
thread_local int64_t ops_all = 0;
thread_local int64_t ops_host_reads = 0;
thread_local int depth = 0;
thread_local at::CallbackHandle counter_handle = 0;

// Operators that make the host wait for the device: a scalar read back, or `nonzero`, whose
// output size the host must learn before it can allocate. Counted when the caller dispatches
// them itself (CPU kernels such as fused AdamW read their CPU step counters inside; their CUDA
// kernels do not).
bool reads_back(const char* name) {
  static const char* const names[] = {"aten::_local_scalar_dense", "aten::item", "aten::nonzero",
                                      "aten::is_nonzero", "aten::equal"};
  for (const char* n : names)
    if (std::string(name) == n) return true;
  return false;
}

std::unique_ptr<at::ObserverContext> count_start(const at::RecordFunction& fn) {
  ++ops_all;
  if (depth == 0 && reads_back(fn.name())) ++ops_host_reads;
  if (depth == 0) ++ops_top;
  ++depth;
  return nullptr;
}

void count_end(const at::RecordFunction&, at::ObserverContext*) { --depth; }

}  // namespace

extern "C" {

const char* bf_last_error() { return last_error.c_str(); }

// `optimizer.zero_grad(set_to_none=True)`: drops every gradient; no ATen operator runs.
int bf_zero_grad(at::Tensor* const* params, size_t n) {
  return guarded([&] {
    for (size_t i = 0; i < n; ++i) params[i]->mutable_grad().reset();
  });
}

// `torch.nn.utils.clip_grad_norm_(params, max_norm)` (foreach path): `_foreach_norm`, `stack`,
// `linalg_vector_norm`, the clamped coefficient and one `_foreach_mul_`, all on the device, no
// host sync. `*total` receives a new 0-dim tensor (the norm before clipping, owned by the
// caller); a zero norm when no parameter has a gradient.
int bf_clip_grad_norm(at::Tensor* const* params, size_t n, double max_norm, at::Tensor** total) {
  return guarded([&] {
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> ps, gs;
    with_grads(params, n, ps, gs);
    if (gs.empty()) {
      *total = new at::Tensor(at::zeros({}, at::kFloat));
      return;
    }
    std::vector<at::Tensor> norms = at::_foreach_norm(gs, 2);
    at::Tensor norm = at::linalg_vector_norm(at::stack(norms), 2);
    // PyTorch writes `max_norm / (total_norm + 1e-6)`, which Tensor.__rtruediv__ computes as
    // reciprocal() * max_norm; same operations, same rounding.
    at::Tensor coef = at::clamp_max(at::reciprocal(norm + 1e-6) * max_norm, 1.0);
    at::_foreach_mul_(gs, coef);
    *total = new at::Tensor(norm);
  });
}

// Points the `.grad` of `params` (in order) at consecutive slices of the 1-d `flat`, which holds
// exactly their elements. With `zero`, `flat` is zeroed first (`zero_grad` for the next backward
// pass, which then accumulates in place). Without, whatever the last backward pass left is
// gathered: a gradient that is not yet its slice (someone reset or replaced it) is copied in,
// and a parameter without one gets a zero slice. Parameters already pointing at their slice
// cost no ATen call, so in a training loop this is one `zero_` per step.
int bf_grads_into(at::Tensor* const* params, size_t n, at::Tensor* flat, bool zero) {
  return guarded([&] {
    at::NoGradGuard no_grad;
    int64_t total = 0;
    for (size_t i = 0; i < n; ++i) total += params[i]->numel();
    if (flat->dim() != 1 || flat->numel() != total || !flat->is_contiguous())
      throw std::runtime_error("the flat gradient buffer has " + std::to_string(flat->numel()) +
                               " elements, the parameters " + std::to_string(total));
    if (zero) flat->zero_();
    char* base = static_cast<char*>(flat->data_ptr());
    const int64_t item = static_cast<int64_t>(flat->element_size());
    int64_t offset = 0;
    for (size_t i = 0; i < n; ++i) {
      at::Tensor& p = *params[i];
      if (p.scalar_type() != flat->scalar_type() || p.device() != flat->device())
        throw std::runtime_error("parameter " + std::to_string(i) +
                                 " differs from the flat gradient buffer in dtype or device");
      const int64_t numel = p.numel();
      at::Tensor& g = p.mutable_grad();
      const bool attached = g.defined() && g.data_ptr() == base + offset * item &&
                            g.sizes() == p.sizes() && g.is_contiguous();
      if (!attached) {
        at::Tensor slice = flat->narrow(0, offset, numel).view(p.sizes());
        if (!zero) {
          if (g.defined())
            slice.copy_(g);
          else
            slice.zero_();
        }
        g = slice;
      }
      offset += numel;
    }
  });
}

// Clipping to a global L2 norm of `max_norm`, to be applied by the fused AdamW kernel, which
// divides the gradients by its `grad_scale` as it reads them (and writes the divided values
// back): that saves `clip_grad_norm_`'s separate pass over every gradient. The gradients hold
// the sum over `world` ranks. `*norm` receives the norm of their mean before clipping
// (PyTorch's return value), `*scale` the divisor `world · max(1, (norm + 1e-6) / max_norm)`:
// the mean, times `clip_grad_norm_`'s coefficient `min(1, max_norm / (norm + 1e-6))`.
//
// With `flat` (the buffer every gradient is a view into, see `bf_grads_into`) the norm is
// `sqrt(dot(flat, flat))`, one BLAS call; without, on CUDA `_foreach_norm` over the
// parameters' gradients, `stack` and `linalg_vector_norm`, as `clip_grad_norm_` computes it,
// and on the CPU a loop of `dot`s (see below).
int bf_clip_scale(at::Tensor* const* params, size_t n, at::Tensor* flat, double max_norm,
                  double world, at::Tensor** norm, at::Tensor** scale) {
  return guarded([&] {
    at::NoGradGuard no_grad;
    at::Tensor total;
    if (flat) {
      total = flat->numel() == 0 ? at::zeros({}, flat->options()) : at::dot(*flat, *flat).sqrt();
    } else {
      std::vector<at::Tensor> ps, gs;
      with_grads(params, n, ps, gs);
      if (gs.empty()) {
        total = at::zeros({}, at::kFloat);
      } else if (gs[0].is_cpu()) {
        // On the CPU `_foreach_norm` has no kernel of its own: it loops over the tensors with
        // `linalg_vector_norm`, which accumulates in double. The same loop with BLAS `dot`
        // (float accumulation, as the CUDA kernel does) is 2.5 times faster. It is recorded as
        // one operator, as `_foreach_norm`'s loop is, with the dots nested inside.
        RECORD_FUNCTION("bf::foreach_squared_norm", std::vector<c10::IValue>());
        std::vector<at::Tensor> squares;
        squares.reserve(gs.size());
        for (const at::Tensor& g : gs) {
          at::Tensor flat_g = g.reshape({-1});
          squares.push_back(at::dot(flat_g, flat_g));
        }
        total = at::stack(squares).sum().sqrt();
      } else {
        total = at::linalg_vector_norm(at::stack(at::_foreach_norm(gs, 2)), 2);
      }
    }
    if (world != 1.0) total = total / world;
    at::Tensor divisor = at::clamp_min((total + 1e-6) / max_norm, 1.0);
    if (world != 1.0) divisor = divisor * world;
    *norm = new at::Tensor(total);
    *scale = new at::Tensor(divisor);
  });
}

// `GradScaler.unscale_`: every gradient of `params` multiplied by `inv_scale` (a 0-dim float
// tensor on their device) in place, and `found_inf` (0-dim float, same device) set to 1 when
// any of them holds an inf or a NaN, in one `_amp_foreach_non_finite_check_and_unscale_`.
int bf_unscale_grads(at::Tensor* const* params, size_t n, at::Tensor* found_inf,
                     at::Tensor* inv_scale) {
  return guarded([&] {
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> ps, gs;
    with_grads(params, n, ps, gs);
    if (gs.empty()) return;
    at::_amp_foreach_non_finite_check_and_unscale_(gs, *found_inf, *inv_scale);
  });
}

// One `AdamW(fused=True)` update of one parameter group: `at::_fused_adamw_` over every
// parameter with a gradient. `step` is the group's 0-dim float step counter on the parameters'
// device, already incremented by the caller; all parameters share it (the kernel only reads it).
//
// `grad_scale` (may be null) is a 0-dim float tensor on the same device that every gradient is
// divided by before the update (the divided gradient is written back), as AMP's unscaling does.
int bf_fused_adamw(at::Tensor* const* params, at::Tensor* const* exp_avgs,
                   at::Tensor* const* exp_avg_sqs, size_t n, at::Tensor* step, double lr,
                   double beta1, double beta2, double weight_decay, double eps,
                   at::Tensor* grad_scale) {
  return guarded([&] {
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> ps, gs;
    std::vector<size_t> index;
    with_grads(params, n, ps, gs, &index);
    if (ps.empty()) return;
    std::vector<at::Tensor> ms, vs, steps;
    for (size_t i : index) {
      ms.push_back(*exp_avgs[i]);
      vs.push_back(*exp_avg_sqs[i]);
      steps.push_back(*step);
    }
    std::vector<at::Tensor> max_exp_avg_sqs;  // amsgrad off
    at::_fused_adamw_(ps, gs, ms, vs, max_exp_avg_sqs, steps, lr, beta1, beta2, weight_decay,
                      eps, /*amsgrad=*/false, /*maximize=*/false,
                      grad_scale ? std::optional<at::Tensor>(*grad_scale) : std::nullopt,
                      std::nullopt);
  });
}

// Autocast state of this thread for `device_type` (c10::DeviceType: 0 CPU, 1 CUDA).
int bf_autocast_get(int device_type, bool* enabled, int* dtype) {
  return guarded([&] {
    auto dev = static_cast<c10::DeviceType>(device_type);
    *enabled = at::autocast::is_autocast_enabled(dev);
    *dtype = static_cast<int>(at::autocast::get_autocast_dtype(dev));
  });
}

// `torch.autocast(device_type, dtype)` entering (`enter` true) or leaving: sets this thread's
// autocast dtype and flag and keeps the nesting count; the cast cache is cleared when the
// outermost region ends, so weights updated by the optimizer are cast afresh next time.
int bf_autocast_set(int device_type, bool enabled, int dtype, bool enter) {
  return guarded([&] {
    auto dev = static_cast<c10::DeviceType>(device_type);
    if (enter) {
      at::autocast::increment_nesting();
    } else if (at::autocast::decrement_nesting() == 0) {
      at::autocast::clear_cache();
    }
    at::autocast::set_autocast_dtype(dev, static_cast<at::ScalarType>(dtype));
    at::autocast::set_autocast_enabled(dev, enabled);
  });
}

// `torch.set_float32_matmul_precision`: "highest" (fp32), "high" (TF32 on CUDA), "medium".
int bf_set_matmul_precision(const char* precision) {
  return guarded([&] { at::globalContext().setFloat32MatmulPrecision(precision); });
}

// Starts counting ATen operator calls made on this thread: `top` counts calls made directly by
// the caller, `all` also those an operator makes inside itself (CPU fallbacks, for instance).
int bf_op_counter_start() {
  return guarded([&] {
    if (counter_handle != 0) throw std::runtime_error("the operator counter is already running");
    ops_top = 0;
    ops_all = 0;
    ops_host_reads = 0;
    depth = 0;
    counter_handle = at::addThreadLocalCallback(
        at::RecordFunctionCallback(count_start, count_end).scopes({at::RecordScope::FUNCTION}));
  });
}

int bf_op_counter_stop(int64_t* top, int64_t* all, int64_t* host_reads) {
  return guarded([&] {
    if (counter_handle == 0) throw std::runtime_error("the operator counter is not running");
    at::removeCallback(counter_handle);
    counter_handle = 0;
    *top = ops_top;
    *all = ops_all;
    *host_reads = ops_host_reads;
  });
}

}  // extern "C"
