#include "train/checkpoint.h"

#include <gtest/gtest.h>

#include <fstream>

#include "io/config_reader.h"
#include "io/errors.h"
#include "ops/ops.h"
#include "support/python.h"
#include "support/test_util.h"

namespace ponder::train {
namespace {
namespace fs = std::filesystem;

CheckpointContents contents(int64_t step) {
  CheckpointContents c;
  c.model = {{"w", full({3, 2}, double(step))}, {"b", arange(0, 4, 1, {.dtype = DType::f32})}};
  c.optimizer = {{{"step", full({}, double(step), {.dtype = DType::i64})}}};
  c.state.step = step;
  c.state.tokens = step * 100;
  c.state.data_state = "task_cursor: " + std::to_string(step * 7);
  c.state.generators = {{42, 7}, {18446744073709551615ull, 3}};
  c.recipe_yaml = "model: {}\n";
  return c;
}

TEST(Checkpoint, WriteReadRoundTrip) {
  fs::path dir = testing::scratch_dir("ckpt_roundtrip");
  fs::path written = write_checkpoint(dir, contents(1200));
  EXPECT_EQ(written.filename(), "step_00001200");
  LoadedCheckpoint c = read_checkpoint(written);
  EXPECT_EQ(c.state.step, 1200);
  EXPECT_EQ(c.state.tokens, 120000);
  EXPECT_EQ(c.state.data_state, "task_cursor: 8400");
  ASSERT_EQ(c.state.generators.size(), 2u);
  EXPECT_EQ(c.state.generators[1].seed, 18446744073709551615ull);
  EXPECT_EQ(c.model.at("w").to_vector<float>(), std::vector<float>(6, 1200.0f));
  EXPECT_EQ(c.optimizer.size(), 1u);
  EXPECT_EQ(c.recipe_yaml, "model: {}\n");
  fs::remove_all(dir);
}

TEST(Checkpoint, IncompleteOrCorruptDirectoriesAreNeverLoaded) {
  fs::path dir = testing::scratch_dir("ckpt_corrupt");
  write_checkpoint(dir, contents(100));
  fs::path newer = write_checkpoint(dir, contents(200));
  fs::path newest = write_checkpoint(dir, contents(300));
  // A crash before COMPLETE: the marker is missing.
  fs::remove(newest / "COMPLETE");
  // A flipped byte in a weight file of the next one.
  {
    std::fstream f(newer / "model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-1, std::ios::end);
    f.put('\x7f');
  }
  std::vector<std::string> rejected;
  auto found = newest_complete_checkpoint(dir, &rejected);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->filename(), "step_00000100");
  ASSERT_EQ(rejected.size(), 2u);
  EXPECT_NE(rejected[0].find("no COMPLETE marker"), std::string::npos) << rejected[0];
  EXPECT_NE(rejected[1].find("checksum differs"), std::string::npos) << rejected[1];
  EXPECT_THROW(read_checkpoint(newest), io::FormatError);
  fs::remove_all(dir);
}

TEST(Checkpoint, PruningKeepsTheNewestAndEveryMth) {
  fs::path dir = testing::scratch_dir("ckpt_prune");
  for (int64_t s : {100, 200, 300, 400, 500, 600}) write_checkpoint(dir, contents(s));
  fs::create_directory(dir / ".incomplete_step_00000700");  // leftover of a killed write
  prune_checkpoints(dir, /*keep=*/2, /*keep_every=*/300);
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(dir)) left.push_back(e.path().filename().string());
  std::sort(left.begin(), left.end());
  EXPECT_EQ(left, (std::vector<std::string>{"step_00000300", "step_00000500", "step_00000600"}));
  fs::remove_all(dir);
}

TEST(Checkpoint, TrainerStateIsReadStrictly) {
  TrainerState s = parse_trainer_state(trainer_state_yaml(contents(5).state), "t.yaml");
  EXPECT_EQ(s.step, 5);
  EXPECT_EQ(testing::error_message<io::ConfigError>([] { parse_trainer_state("step: -1\ntokens: 0\nworld_size: 1\n", "t.yaml"); }),
            "step: expected a non-negative integer, got \"-1\" (line 1)");
  EXPECT_EQ(testing::error_message<io::ConfigError>([] { parse_trainer_state("step: 1\ntokens: 0\nworld_size: 1\nstpe: 3\n", "t.yaml"); }),
            "unknown key stpe (line 4); did you mean \"step\"?");
  EXPECT_NE(testing::error_message<io::ConfigError>(
                [] { parse_trainer_state("step: 1\ntokens: 0\nworld_size: 1\ngenerators: [{seed: x, offset: 1}]\n", "t.yaml"); })
                .find("not an unsigned integer"),
            std::string::npos);
  EXPECT_THROW(parse_trainer_state("step: 1\n", "t.yaml"), io::ConfigError);
}

}  // namespace
}  // namespace ponder::train
