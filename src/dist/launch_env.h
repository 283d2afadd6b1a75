// Where this process sits in a job, read from the launcher's environment: mpirun (OMPI_COMM_WORLD_*),
// srun (SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID) or a torchrun-style launcher (RANK,
// WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT). Without any of them: one process.
#pragma once

#include <functional>
#include <string>

namespace ponder::dist {

struct LaunchEnv {
  std::string launcher = "none";  // none | mpi | slurm | torchrun
  int rank = 0, world_size = 1, local_rank = 0;
  std::string master_addr;        // torchrun only
  int master_port = 0;
  std::string job_id;             // PONDER_JOB_ID, else TORCHELASTIC_RUN_ID: checked at the rendezvous

  // mpirun and srun start ranks that MPI can connect.
  bool has_mpi() const { return launcher == "mpi" || launcher == "slurm"; }
};

using Getenv = std::function<const char*(const char*)>;

// ValueError naming the variable when one is malformed or the set is inconsistent
// (rank outside the world, torchrun without MASTER_ADDR/MASTER_PORT).
LaunchEnv detect_launch(const Getenv& getenv);
LaunchEnv detect_launch();  // from the process environment

}  // namespace ponder::dist
