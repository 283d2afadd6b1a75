// The MPI world of dist_tests (set up by mpi_main.cpp) and helpers for tests that run on every rank.
#pragma once

#include <filesystem>
#include <string>

#include "dist/mpi_communicator.h"

namespace ponder::testing {

dist::MpiCommunicator& world();

// One fresh directory that every rank sees (rank 0 makes it).
std::filesystem::path shared_scratch_dir(const std::string& name);

}  // namespace ponder::testing
