// Entry point of dist_tests, which run as two ranks under mpirun (tests/dist/mpi_check.sh): MPI is
// brought up once around all tests.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>

#include "dist_world.h"

namespace ponder::testing {
namespace {
dist::MpiCommunicator* g_world = nullptr;
}

dist::MpiCommunicator& world() { return *g_world; }

std::filesystem::path shared_scratch_dir(const std::string& name) {
  Tensor pid = Tensor::empty({1}, {DType::i64, Device::cpu()});
  pid.data<int64_t>()[0] = ::getpid();
  world().broadcast(pid, 0);
  const auto dir = std::filesystem::temp_directory_path() / ("ponder_" + name + "_" + std::to_string(pid.item<int64_t>()));
  if (world().rank() == 0) {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
  }
  world().barrier();
  return dir;
}

}  // namespace ponder::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  // PONDER_COMM_TIMEOUT_S (as for ponder itself) shortens the wait for a hung rank's test.
  ponder::dist::MpiCommunicator world(std::getenv("PONDER_COMM_TIMEOUT_S") ? ponder::dist::comm_timeout()
                                                                            : std::chrono::seconds(60));
  ponder::testing::g_world = &world;
  const int failed = RUN_ALL_TESTS();
  // Every rank's verdict decides the exit status of each.
  return ponder::dist::any_rank(world, failed != 0) ? 1 : 0;
}
