// Entry point of dist_tests, which run as two ranks under mpirun (tests/dist/mpi_check.sh): MPI is
// brought up once around all tests.
#include <gtest/gtest.h>

#include "dist_world.h"

namespace ponder::testing {
namespace {
dist::MpiCommunicator* g_world = nullptr;
}

dist::MpiCommunicator& world() { return *g_world; }

}  // namespace ponder::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ponder::dist::MpiCommunicator world(std::chrono::seconds(60));
  ponder::testing::g_world = &world;
  const int failed = RUN_ALL_TESTS();
  // Every rank's verdict decides the exit status of each.
  return ponder::dist::any_rank(world, failed != 0) ? 1 : 0;
}
