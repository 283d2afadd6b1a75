// `ponder train --gpus N` on one node: the command starts itself N times, one process per GPU,
// with torchrun-style variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR=127.0.0.1, a free
// MASTER_PORT, a fresh PONDER_JOB_ID), so the ranks meet at the TCP rendezvous.
#pragma once

namespace ponder::dist {

// Runs this process's own command line as `ranks` processes and waits for them. When one fails
// the others are stopped (SIGTERM, then SIGKILL after a grace period). Returns 0 when every rank
// succeeded, else the first failure's exit status (1 for a rank killed by a signal).
int spawn_local_ranks(int ranks);

}  // namespace ponder::dist
