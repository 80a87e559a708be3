// PyTorch's own distributed engine (c10d), behind a C ABI for `src/runtime/distributed.rs`:
// a TCPStore for the rendezvous, and a Gloo process group (CPU tensors) over it, as
// `torch.distributed.init_process_group("gloo", init_method="env://")` builds them.
//
// Only torch's classes are touched; gloo's objects stay behind ProcessGroupGloo's
// `shared_ptr`s (its headers come from Debian's libgloo-dev: the wheel ships none, and gloo
// itself is compiled into libtorch_cpu). Every collective waits for its result; a peer that
// died or stalls makes the wait fail after the group's timeout, with gloo's message.

#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "guarded.hpp"

using bf::guarded;

struct BfGroup {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
};

namespace {

std::vector<at::Tensor> tensors_of(at::Tensor* const* ts, size_t n) {
  std::vector<at::Tensor> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) out.push_back(*ts[i]);
  return out;
}

void wait(const c10::intrusive_ptr<c10d::Work>& work) {
  work->wait();
}

}  // namespace

// The rendezvous every backend meets at: a TCPStore at host:port (rank 0 hosts it unless
// `store_hosted`, as when torchrun's agent hosts it), seen through the key space
// torch.distributed uses for its default group. Shared with csrc/nccl.cpp.
c10::intrusive_ptr<c10d::Store> bf_rendezvous(const char* host, int port, int rank, int world,
                                              int store_hosted,
                                              std::chrono::milliseconds timeout) {
  c10d::TCPStoreOptions o;
  o.port = static_cast<std::uint16_t>(port);
  o.isServer = rank == 0 && !store_hosted;
  o.numWorkers = world;
  o.waitWorkers = !store_hosted;
  o.timeout = timeout;
  auto tcp = c10::make_intrusive<c10d::TCPStore>(std::string(host), o);
  return c10::make_intrusive<c10d::PrefixStore>("default_pg/0/", tcp);
}

// For csrc/nccl.cpp: a group of another backend over its store.
BfGroup* bf_group_from(c10::intrusive_ptr<c10d::Store> store,
                       c10::intrusive_ptr<c10d::Backend> backend) {
  return new BfGroup{std::move(store), std::move(backend)};
}

extern "C" {

// The rendezvous (bf_rendezvous), then a Gloo group of `world` ranks. `loopback` binds gloo to
// 127.0.0.1 (one machine); otherwise to the interface of this machine's hostname.
int bf_pg_new_gloo(const char* host, int port, int rank, int world, int store_hosted,
                   int loopback, int64_t timeout_ms, BfGroup** out) {
  return guarded([&] {
    auto timeout = std::chrono::milliseconds(timeout_ms);
    auto store = bf_rendezvous(host, port, rank, world, store_hosted, timeout);
    auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
    opts->devices.push_back(
        loopback ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                 : c10d::ProcessGroupGloo::createDefaultDevice());
    auto pg = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world, opts);
    *out = new BfGroup{store, pg};
  });
}

void bf_pg_free(BfGroup* group) { delete group; }

// Sums each tensor over the ranks, in place; one collective for the list (tensors of one dtype).
int bf_pg_allreduce_sum(BfGroup* group, at::Tensor* const* ts, size_t n) {
  return guarded([&] {
    auto tensors = tensors_of(ts, n);
    if (tensors.size() == 1) {
      c10d::AllreduceOptions opts;
      opts.reduceOp = c10d::ReduceOp::SUM;
      wait(group->backend->allreduce(tensors, opts));
    } else {
      // Several tensors of one rank: gloo flattens them into one buffer, one collective.
      c10d::AllreduceCoalescedOptions opts;
      opts.reduceOp = c10d::ReduceOp::SUM;
      wait(group->backend->allreduce_coalesced(tensors, opts));
    }
  });
}

// Copies rank `root`'s tensor into every rank's, in place.
int bf_pg_broadcast(BfGroup* group, at::Tensor* t, int root) {
  return guarded([&] {
    std::vector<at::Tensor> tensors{*t};
    c10d::BroadcastOptions opts;
    opts.rootRank = root;
    wait(group->backend->broadcast(tensors, opts));
  });
}

// Every rank's `t` (same shape on each), gathered into `out` (world × t's elements, rank order).
int bf_pg_allgather(BfGroup* group, at::Tensor* t, at::Tensor** out) {
  return guarded([&] {
    int world = group->backend->getSize();
    std::vector<at::Tensor> parts;
    for (int r = 0; r < world; ++r) parts.push_back(at::empty_like(*t));
    std::vector<std::vector<at::Tensor>> outputs{parts};
    std::vector<at::Tensor> inputs{*t};
    wait(group->backend->allgather(outputs, inputs));
    *out = new at::Tensor(at::stack(outputs[0], 0));
  });
}

int bf_pg_barrier(BfGroup* group) {
  return guarded([&] { wait(group->backend->barrier()); });
}

}  // extern "C"
