// Collective communication between the ranks of a data-parallel job. The trainer sees only this
// interface; LocalCommunicator (one process), MpiCommunicator (CPU tensors over OpenMPI) and
// NcclCommunicator (device tensors) implement it. Every rank must issue the same collectives in
// the same order. Each operation is asynchronous: it returns a handle, and the result may be read
// only after wait() (on the GPU: once work queued after wait() on the compute stream runs).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "tensor/tensor.h"

namespace ponder::dist {

// A collective that failed or timed out (a peer died or hangs).
class CommError : public Error {
 public:
  using Error::Error;
};

enum class ReduceOp { sum, avg };

// An operation in flight.
class Work {
 public:
  virtual ~Work() = default;
  // Blocks until the result may be used; throws CommError if the operation failed or timed out.
  virtual void wait() = 0;
};
using WorkHandle = std::unique_ptr<Work>;

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  virtual std::string name() const = 0;  // "local", "mpi", "nccl"
  virtual Device device() const = 0;      // where the tensors it reduces live

  // Tensors are contiguous and on the device the communicator serves; every rank passes the same
  // shape and dtype.
  // In place: t becomes the sum (or mean) of every rank's t.
  virtual WorkHandle all_reduce_async(const Tensor& t, ReduceOp op) = 0;
  // out (numel = input.numel() / world_size) becomes this rank's slice of the reduced input.
  virtual WorkHandle reduce_scatter_async(const Tensor& input, const Tensor& out, ReduceOp op) = 0;
  // out (numel = input.numel() * world_size) becomes every rank's input, in rank order.
  virtual WorkHandle all_gather_async(const Tensor& input, const Tensor& out) = 0;
  // In place: t becomes root's t.
  virtual WorkHandle broadcast_async(const Tensor& t, int root) = 0;
  virtual void barrier() = 0;

  void all_reduce(const Tensor& t, ReduceOp op = ReduceOp::sum) { all_reduce_async(t, op)->wait(); }
  void reduce_scatter(const Tensor& input, const Tensor& out, ReduceOp op = ReduceOp::sum) {
    reduce_scatter_async(input, out, op)->wait();
  }
  void all_gather(const Tensor& input, const Tensor& out) { all_gather_async(input, out)->wait(); }
  void broadcast(const Tensor& t, int root = 0) { broadcast_async(t, root)->wait(); }
};

// One process: every collective is the identity (or a copy).
class LocalCommunicator : public Communicator {
 public:
  explicit LocalCommunicator(Device device = Device::cpu()) : device_(device) {}
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  std::string name() const override { return "local"; }
  Device device() const override { return device_; }
  WorkHandle all_reduce_async(const Tensor& t, ReduceOp op) override;
  WorkHandle reduce_scatter_async(const Tensor& input, const Tensor& out, ReduceOp op) override;
  WorkHandle all_gather_async(const Tensor& input, const Tensor& out) override;
  WorkHandle broadcast_async(const Tensor& t, int root) override;
  void barrier() override {}

 private:
  Device device_;
};

// A finished operation.
WorkHandle done();
// Checks what every implementation requires of a collective's tensors.
void check_collective(const char* op, const Tensor& t, Device device);

// How long a rank waits for its peers before giving up: PONDER_COMM_TIMEOUT_S when set, else 30
// minutes (rank 0 may evaluate or write a checkpoint while the others wait).
std::chrono::seconds comm_timeout();

// True on every rank when `value` is true on any rank (a collective).
bool any_rank(Communicator& comm, bool value);

}  // namespace ponder::dist
