// Collectives over NCCL for device tensors (built with CUDA only). Each collective waits for the
// work already queued on ponder's compute stream, runs on a separate communication stream so it
// overlaps later compute, and wait() checks NCCL's asynchronous errors while it waits, aborting
// the communicator after the timeout instead of hanging.
#pragma once

#include <array>
#include <chrono>
#include <memory>

#include "dist/communicator.h"

namespace ponder::dist {

// ncclUniqueId's bytes: made by rank 0, handed to every rank (over MPI or the TCP rendezvous).
using NcclId = std::array<char, 128>;
NcclId make_nccl_id();

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(int rank, int world_size, const NcclId& id, int device, std::chrono::seconds timeout);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return rank_; }
  int world_size() const override { return world_; }
  std::string name() const override { return "nccl"; }
  Device device() const override { return Device::cuda(device_); }
  WorkHandle all_reduce_async(const Tensor& t, ReduceOp op) override;
  WorkHandle reduce_scatter_async(const Tensor& input, const Tensor& out, ReduceOp op) override;
  WorkHandle all_gather_async(const Tensor& input, const Tensor& out) override;
  WorkHandle broadcast_async(const Tensor& t, int root) override;
  void barrier() override;

  struct Impl;  // NCCL and CUDA handles, shared with the works in flight

 private:
  std::shared_ptr<Impl> impl_;
  int rank_, world_, device_;
};

}  // namespace ponder::dist
