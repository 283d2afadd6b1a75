#include "dist/launch_env.h"

#include <cstdlib>

#include "tensor/error.h"

namespace ponder::dist {
namespace {

int int_var(const Getenv& getenv, const char* name, int min_value) {
  const char* s = getenv(name);
  PONDER_CHECK(s != nullptr, ValueError, name, " is not set but the launcher's other variables are");
  char* end = nullptr;
  const long v = std::strtol(s, &end, 10);
  PONDER_CHECK(end != s && *end == '\0' && v >= min_value && v < (1L << 30), ValueError, name,
               ": expected an integer of at least ", min_value, ", got \"", s, "\"");
  return int(v);
}

LaunchEnv read(const Getenv& getenv, const char* launcher, const char* rank, const char* world, const char* local_rank) {
  LaunchEnv e;
  e.launcher = launcher;
  e.rank = int_var(getenv, rank, 0);
  e.world_size = int_var(getenv, world, 1);
  e.local_rank = getenv(local_rank) ? int_var(getenv, local_rank, 0) : 0;
  PONDER_CHECK(e.rank < e.world_size, ValueError, rank, "=", e.rank, " is not below ", world, "=", e.world_size);
  return e;
}

}  // namespace

LaunchEnv detect_launch(const Getenv& getenv) {
  if (getenv("OMPI_COMM_WORLD_RANK"))
    return read(getenv, "mpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK");
  if (getenv("SLURM_PROCID") && getenv("SLURM_NTASKS"))
    return read(getenv, "slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID");
  if (getenv("RANK") && getenv("WORLD_SIZE")) {
    LaunchEnv e = read(getenv, "torchrun", "RANK", "WORLD_SIZE", "LOCAL_RANK");
    const char* addr = getenv("MASTER_ADDR");
    PONDER_CHECK(addr != nullptr && *addr != '\0', ValueError, "MASTER_ADDR is not set (RANK and WORLD_SIZE are)");
    e.master_addr = addr;
    e.master_port = int_var(getenv, "MASTER_PORT", 1);
    PONDER_CHECK(e.master_port < 65536, ValueError, "MASTER_PORT: ", e.master_port, " is not a TCP port");
    for (const char* name : {"PONDER_JOB_ID", "TORCHELASTIC_RUN_ID"}) {
      if (getenv(name) != nullptr) {
        e.job_id = getenv(name);
        break;
      }
    }
    return e;
  }
  return {};
}

LaunchEnv detect_launch() {
  return detect_launch([](const char* name) -> const char* { return std::getenv(name); });
}

}  // namespace ponder::dist
