// The NCCL process group (CUDA tensors), as `init_process_group("nccl")` builds it: the same
// rendezvous as Gloo's (csrc/distributed.cpp), each process on `cuda:device`. Compiled against
// the wheel's ProcessGroupNCCL.hpp with NCCL's header (nvidia/nccl) and the CUDA headers of
// the venv (nvidia/cu13, nvidia-cuda-cccl, triton's crt) when build.rs finds them and a
// libtorch_cuda to link; otherwise a stub says why there is none.

#include <ATen/ATen.h>

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "guarded.hpp"

using bf::guarded;

struct BfGroup;

#ifdef BF_WITH_NCCL

#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>

// Defined in csrc/distributed.cpp.
c10::intrusive_ptr<c10d::Store> bf_rendezvous(const char* host, int port, int rank, int world,
                                              int store_hosted,
                                              std::chrono::milliseconds timeout);
BfGroup* bf_group_from(c10::intrusive_ptr<c10d::Store> store,
                       c10::intrusive_ptr<c10d::Backend> backend);

extern "C" int bf_pg_new_nccl(const char* host, int port, int rank, int world, int store_hosted,
                              int64_t timeout_ms, int device, BfGroup** out) {
  return guarded([&] {
    auto timeout = std::chrono::milliseconds(timeout_ms);
    // The tensors live on cuda:device (the CLI puts the model there); ProcessGroupNCCL
    // guards each collective's device from its tensors.
    (void)device;
    auto store = bf_rendezvous(host, port, rank, world, store_hosted, timeout);
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = timeout;
    auto pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, world, opts);
    *out = bf_group_from(store, pg);
  });
}

extern "C" int bf_nccl_available() { return 1; }

#else

extern "C" int bf_pg_new_nccl(const char*, int, int, int, int, int64_t, int, BfGroup**) {
  return guarded([] {
    throw std::runtime_error(
        "this build has no NCCL process group (built without libtorch_cuda or NCCL's and "
        "CUDA's headers); use Gloo on the CPU");
  });
}

extern "C" int bf_nccl_available() { return 0; }

#endif
