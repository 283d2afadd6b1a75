// A TCP rendezvous for jobs started without MPI (torchrun-style variables, or `ponder train
// --gpus N`): rank 0 listens on MASTER_ADDR:MASTER_PORT and hands its payload (the NCCL id) to
// every other rank that presents the same job id. Other ranks retry connecting until the timeout,
// so they may start before rank 0.
#pragma once

#include <chrono>
#include <string>

namespace ponder::dist {

struct RendezvousOptions {
  std::string host;   // rank 0's address (it listens on every interface)
  int port = 0;
  int rank = 0, world_size = 1;
  std::string job_id; // ranks of different jobs that meet on one port refuse each other
  std::chrono::milliseconds timeout{60000};
};

// Returns rank 0's payload on every rank (rank 0 returns its own once every rank has it).
// CommError naming the cause: ranks missing at the timeout, a job id mismatch, a rank twice.
std::string rendezvous(const RendezvousOptions& options, const std::string& payload);

// A local TCP port nobody listens on now (the kernel picks it), for a rendezvous moments later.
int free_tcp_port();

}  // namespace ponder::dist
