// Every fuzz target's seed corpus (its findings included) through the same entry the fuzzer
// calls, so CI replays them without clang: a file must be accepted or rejected with a ponder::Error.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "fuzz/entries.h"

namespace ponder::fuzz {
namespace {
namespace fs = std::filesystem;

class FuzzCorpus : public ::testing::TestWithParam<Target> {};

TEST_P(FuzzCorpus, EveryFileIsAcceptedOrRejectedWithAnError) {
  const fs::path dir = fs::path(PONDER_SOURCE_DIR) / "tests/fuzz/corpus" / GetParam().name;
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::ifstream in(e.path(), std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    EXPECT_NO_THROW(GetParam().run(bytes.str())) << e.path();
    ++files;
  }
  EXPECT_GT(files, 0) << dir;
}

INSTANTIATE_TEST_SUITE_P(Targets, FuzzCorpus, ::testing::ValuesIn(targets()),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace ponder::fuzz
