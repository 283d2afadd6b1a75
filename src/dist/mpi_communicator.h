// Collectives over MPI (OpenMPI) for CPU tensors: the communicator of CPU ranks launched by
// mpirun or srun. MPI is initialised by the first MpiCommunicator and finalised when it is
// destroyed. A wait that does not complete within the timeout throws CommError, so a rank whose
// peer hangs exits instead of waiting forever (mpirun itself ends a job whose rank dies).
#pragma once

#include <chrono>

#include "dist/communicator.h"

namespace ponder::dist {

class MpiCommunicator : public Communicator {
 public:
  explicit MpiCommunicator(std::chrono::seconds timeout = comm_timeout());
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int world_size() const override { return world_; }
  std::string name() const override { return "mpi"; }
  Device device() const override { return Device::cpu(); }
  WorkHandle all_reduce_async(const Tensor& t, ReduceOp op) override;
  WorkHandle reduce_scatter_async(const Tensor& input, const Tensor& out, ReduceOp op) override;
  WorkHandle all_gather_async(const Tensor& input, const Tensor& out) override;
  WorkHandle broadcast_async(const Tensor& t, int root) override;
  void barrier() override;

 private:
  int rank_ = 0, world_ = 1;
  bool owns_mpi_ = false;
  std::chrono::seconds timeout_;
};

}  // namespace ponder::dist
