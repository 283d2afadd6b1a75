#include "dist/launch.h"

#include <exception>
#include <functional>

#include "backend/kernels.h"
#include "dist/mpi_communicator.h"
#include "dist/rendezvous.h"
#include <cstring>
#ifdef PONDER_WITH_CUDA
#include "dist/nccl_communicator.h"
#endif

namespace ponder::dist {
namespace {

#ifdef PONDER_WITH_CUDA
std::string to_string(const NcclId& id) { return std::string(id.data(), id.size()); }

std::shared_ptr<Communicator> make_nccl(const LaunchEnv& env, Device device) {
  const auto timeout = comm_timeout();
  if (env.world_size == 1) return std::make_shared<NcclCommunicator>(0, 1, make_nccl_id(), device.index, timeout);
  if (!env.has_mpi()) {
    const std::string made = env.rank == 0 ? to_string(make_nccl_id()) : std::string();
    const std::string id = rendezvous({.host = env.master_addr, .port = env.master_port, .rank = env.rank,
                                       .world_size = env.world_size, .job_id = env.job_id, .timeout = timeout},
                                      made);
    PONDER_CHECK(id.size() == sizeof(NcclId), CommError, "rendezvous: rank 0 sent ", id.size(), " bytes for the NCCL id");
    NcclId received;
    std::memcpy(received.data(), id.data(), id.size());
    return std::make_shared<NcclCommunicator>(env.rank, env.world_size, received, device.index, timeout);
  }
  auto mpi = std::make_shared<MpiCommunicator>(timeout);
  Tensor id = Tensor::empty({int64_t(sizeof(NcclId) / sizeof(int32_t))}, {DType::i32, Device::cpu()});
  if (mpi->rank() == 0) {
    const NcclId made = make_nccl_id();
    std::memcpy(id.data_ptr(), made.data(), made.size());
  }
  mpi->broadcast(id, 0);
  NcclId received;
  std::memcpy(received.data(), id.data_ptr(), received.size());
  auto nccl = std::make_shared<NcclCommunicator>(env.rank, env.world_size, received, device.index, timeout);
  // MPI stays up as long as NCCL (mpirun expects every rank to finalise it at the end).
  return std::shared_ptr<Communicator>(nccl.get(), [nccl, mpi](Communicator*) mutable {
    nccl.reset();
    mpi.reset();
  });
}
#else
std::shared_ptr<Communicator> make_nccl(const LaunchEnv&, Device) {
  fail<DeviceError>("NCCL needs a build with CUDA");
  return nullptr;
}
#endif

}  // namespace

std::shared_ptr<Communicator> make_communicator(const LaunchEnv& env, Device device, bool nccl_alone) {
  if (env.world_size == 1 && !(nccl_alone && device.is_cuda())) return std::make_shared<LocalCommunicator>(device);
  if (device.is_cuda()) return make_nccl(env, device);
  PONDER_CHECK(env.has_mpi(), ValueError, "CPU ranks communicate over MPI, but this ", env.launcher,
               " launch has no MPI: start it with mpirun or srun");
  auto mpi = std::make_shared<MpiCommunicator>();
  PONDER_CHECK(mpi->rank() == env.rank && mpi->world_size() == env.world_size, ValueError, "MPI sees rank ", mpi->rank(),
               " of ", mpi->world_size(), " but the launcher's environment says ", env.rank, " of ", env.world_size);
  return mpi;
}

void check_same_recipe(Communicator& comm, const std::string& resolved_yaml) {
  // std::hash is enough: every rank runs the same binary, so equal texts hash alike.
  const auto hash = int64_t(std::hash<std::string>{}(resolved_yaml) >> 1);
  Tensor mine = Tensor::empty({1}, {DType::i64, Device::cpu()});
  mine.data<int64_t>()[0] = hash;
  Tensor rank0 = mine.to(comm.device());
  comm.broadcast(rank0, 0);
  const bool differs = rank0.to(Device::cpu()).data<int64_t>()[0] != hash;
  PONDER_CHECK(!any_rank(comm, differs), ValueError,
               "the ranks of this job were given different recipes (file or --set overrides); every rank must run the same one");
}

void on_rank0(Communicator& comm, const std::function<void()>& work) {
  std::exception_ptr failure;
  if (comm.rank() == 0) {
    try {
      work();
    } catch (...) {
      failure = std::current_exception();
    }
  }
  const bool failed = any_rank(comm, failure != nullptr);
  if (failure) std::rethrow_exception(failure);
  PONDER_CHECK(!failed, PeerFailed, "rank 0 failed (see its message)");
}

}  // namespace ponder::dist
