// The few ATen calls tch 0.24 does not bind, behind a C ABI for `src/ffi.rs`.
//
// * `bf_zero_grad`, `bf_clip_grad_norm`, `bf_fused_adamw`: the optimizer step in a handful of
//   ATen calls whatever the number of parameter tensors (`_foreach_norm`, `_foreach_mul_`,
//   `_fused_adamw_`), as PyTorch's `clip_grad_norm_` and `AdamW(fused=True)` do.
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

// One `AdamW(fused=True)` update of one parameter group: `at::_fused_adamw_` over every
// parameter with a gradient. `step` is the group's 0-dim float step counter on the parameters'
// device, already incremented by the caller; all parameters share it (the kernel only reads it).
int bf_fused_adamw(at::Tensor* const* params, at::Tensor* const* exp_avgs,
                   at::Tensor* const* exp_avg_sqs, size_t n, at::Tensor* step, double lr,
                   double beta1, double beta2, double weight_decay, double eps) {
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
                      eps, /*amsgrad=*/false, /*maximize=*/false, std::nullopt, std::nullopt);
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
