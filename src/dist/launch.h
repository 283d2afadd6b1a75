// Joining a job: the communicator a process uses, and the checks every rank makes together before
// training (same recipe everywhere; rank 0 alone prepares shared files).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "dist/communicator.h"
#include "dist/launch_env.h"

namespace ponder::dist {

// CPU: Local for one process, MPI for ranks started by mpirun/srun. CUDA: NCCL on `device`,
// bootstrapped over MPI (mpirun/srun) or the TCP rendezvous (torchrun-style variables, --gpus N).
// A single process gets Local, or with `nccl_alone` NCCL of one rank (`--gpus 1`: the multi-GPU
// path, overlap included, on one GPU).
std::shared_ptr<Communicator> make_communicator(const LaunchEnv& env, Device device, bool nccl_alone = false);

// ConfigError on every rank when some rank's recipe text differs from rank 0's.
void check_same_recipe(Communicator& comm, const std::string& resolved_yaml);

// Runs `work` on rank 0 only; if it throws, rank 0 rethrows and every other rank throws
// PeerFailed, so all ranks stop together instead of waiting for rank 0.
void on_rank0(Communicator& comm, const std::function<void()>& work);

class PeerFailed : public Error {
 public:
  using Error::Error;
};

}  // namespace ponder::dist
