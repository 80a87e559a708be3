// `bf_bernoulli_`: `Tensor.bernoulli_(p)` on the CPU, the same numbers drawn from the same
// generator, several times faster where libtorch draws them one at a time.
//
// Why: dropout is `noise.bernoulli_(1 - p)`, then `noise / (1 - p)` times the input. On a CPU
// that is not Intel's (cpuinfo's vendor check in ATen's DistributionKernels.cpp), or a build
// without MKL, libtorch's `bernoulli_` with a scalar `p` is a serial loop that calls the
// generator through a virtual `random64()` per element: two Mersenne Twister outputs, then
// `((hi << 32 | lo) & (2^53 - 1)) * 2^-53 < p`. On an AMD EPYC that is 6.5 ns an element,
// a third of an attention block's training time (BERT drops the attention probabilities).
//
// Here the same engine state is read once (under the generator's lock), the 32-bit outputs
// are tempered in blocks straight from the state array (a loop the compiler vectorises; each
// twist of the state is the engine's own), the pairs become 0/1 floats, and the advanced
// state is written back: the tensor holds the values `bernoulli_` would have written and the
// generator ends where it would have ended, so everything drawn afterwards is unchanged.
// `tests/dropout.rs` checks both, bit for bit, against libtorch's own kernel.
//
// Where libtorch takes MKL's path (an Intel CPU with MKL), or the tensor is not a contiguous
// float32 CPU tensor, this calls `bernoulli_` itself.

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/MT19937RNGEngine.h>

#include <algorithm>
#include <cmath>
#include <cpuid.h>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <vector>

#include "guarded.hpp"

namespace {

// ATen's test for its MKL path: the first processor's vendor is Intel (cpuinfo reads CPUID).
bool intel_cpu() {
  unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx)) return false;
  char vendor[13];
  std::memcpy(vendor, &ebx, 4);
  std::memcpy(vendor + 4, &edx, 4);
  std::memcpy(vendor + 8, &ecx, 4);
  vendor[12] = '\0';
  return std::strcmp(vendor, "GenuineIntel") == 0;
}

bool libtorch_draws_serially() {
  static const bool serial = !(at::globalContext().hasMKL() && intel_cpu());
  return serial;
}

// The tempering of `at::mt19937::operator()`, on a block of the state.
__attribute__((target_clones("avx2", "default")))
void temper(const uint32_t* state, uint32_t* out, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    uint32_t y = state[i];
    y ^= (y >> 11);
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= (y >> 18);
    out[i] = y;
  }
}

// The next `n` outputs of `engine`, as `n` calls of `engine()` would return them.
void draw(at::mt19937& engine, uint32_t* out, size_t n) {
  at::mt19937_data_pod d = engine.data();
  size_t k = 0;
  while (k < n) {
    // Outputs left before the engine twists its state (it twists when `--left_` reaches 0).
    size_t ready = static_cast<size_t>(d.left_ - 1);
    if (ready == 0) {
      engine.set_data(d);
      out[k++] = engine();  // the engine's own twist, and the first output after it
      d = engine.data();
      continue;
    }
    size_t m = std::min(ready, n - k);
    temper(d.state_.data() + d.next_, out + k, m);
    d.left_ -= static_cast<int>(m);
    d.next_ += static_cast<uint32_t>(m);
    k += m;
  }
  engine.set_data(d);
}

// `bernoulli_distribution<double>(p)` of ATen on each (hi, lo) pair: its uniform
// `m * 2^-53`, with `m` the pair's low 53 bits, is below `p` exactly when `m < ceil(p * 2^53)`
// (scaling by a power of two is exact), an integer comparison the compiler vectorises.
__attribute__((target_clones("avx2", "default")))
void to_bernoulli(const uint32_t* pairs, float* out, size_t n, uint64_t threshold) {
  for (size_t i = 0; i < n; ++i) {
    uint64_t m = (static_cast<uint64_t>(pairs[2 * i] & 0x1fffffu) << 32) | pairs[2 * i + 1];
    out[i] = static_cast<float>(m < threshold);
  }
}

void fill_bernoulli(at::Tensor& self, double p) {
  TORCH_CHECK(p >= 0 && p <= 1, "bernoulli_ expects 0 <= p <= 1, but got p=", p);
  at::Generator gen = at::detail::getDefaultCPUGenerator();
  auto* generator = at::check_generator<at::CPUGeneratorImpl>(gen);
  float* out = self.data_ptr<float>();
  const size_t n = static_cast<size_t>(self.numel());
  constexpr size_t chunk = 4096;
  std::vector<uint32_t> pairs(2 * chunk);
  // See ATen's note [Acquire lock when using random generators].
  std::lock_guard<std::mutex> lock(generator->mutex_);
  const auto threshold = static_cast<uint64_t>(std::ceil(p * 9007199254740992.0));  // 2^53
  at::mt19937 engine = generator->engine();
  for (size_t start = 0; start < n; start += chunk) {
    size_t m = std::min(chunk, n - start);
    draw(engine, pairs.data(), 2 * m);
    to_bernoulli(pairs.data(), out + start, m, threshold);
  }
  generator->set_engine(engine);
}

}  // namespace

extern "C" {

int bf_bernoulli_(at::Tensor* self, double p) {
  return bf::guarded([&] {
    at::Tensor& t = *self;
    if (t.device().is_cpu() && t.scalar_type() == at::kFloat && t.is_contiguous() &&
        libtorch_draws_serially()) {
      fill_bernoulli(t, p);
    } else {
      t.bernoulli_(p);
    }
  });
}

}  // extern "C"
