#include "train/checkpoint.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

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

// Optimizer state large enough that writing it takes a while after the weights are on disk.
CheckpointContents large_contents(int64_t step) {
  CheckpointContents c = contents(step);
  c.optimizer = {{{"exp_avg", full({int64_t(8) << 20}, 1.0)}, {"exp_avg_sq", full({int64_t(8) << 20}, 2.0)}}};
  return c;
}

bool wait_for(const fs::path& path, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!fs::exists(path)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return true;
}

TEST(Checkpoint, AWriteKilledMidwayLeavesThePreviousCheckpoint) {
  fs::path dir = testing::scratch_dir("ckpt_killed");
  write_checkpoint(dir, contents(100));
  const CheckpointContents next = large_contents(200);  // built before fork: the child only writes
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    try {
      write_checkpoint(dir, next);
    } catch (...) {
    }
    ::pause();  // stays alive so that the kill always lands on a running writer
    ::_exit(0);
  }
  // Killed once the new weights are written, while the optimizer state is being written.
  const fs::path temp = dir / ".incomplete_step_00000200";
  const bool saw_weights = wait_for(temp / "model.safetensors", std::chrono::seconds(60));
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(saw_weights);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  ASSERT_TRUE(fs::exists(temp)) << "the kill should land mid-write";
  EXPECT_FALSE(fs::exists(temp / "COMPLETE"));
  EXPECT_FALSE(fs::exists(dir / "step_00000200"));

  // Resume finds the previous checkpoint, intact; the leftover is never a candidate.
  std::vector<std::string> rejected;
  auto found = newest_complete_checkpoint(dir, &rejected);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->filename(), "step_00000100");
  EXPECT_TRUE(rejected.empty());
  LoadedCheckpoint c = read_checkpoint(*found);
  EXPECT_EQ(c.state.step, 100);
  EXPECT_EQ(c.model.at("w").to_vector<float>(), std::vector<float>(6, 100.0f));

  // The next save clears the leftover and becomes the newest.
  write_checkpoint(dir, contents(200));
  EXPECT_EQ(newest_complete_checkpoint(dir)->filename(), "step_00000200");
  prune_checkpoints(dir, /*keep=*/5, /*keep_every=*/0);
  EXPECT_FALSE(fs::exists(temp));
  fs::remove_all(dir);
}

TEST(Checkpoint, RewritingAStepReplacesItWhole) {
  fs::path dir = testing::scratch_dir("ckpt_rewrite");
  write_checkpoint(dir, contents(100));
  CheckpointContents again = contents(100);
  again.model = {{"w", full({3, 2}, 7.0)}};
  again.state.tokens = 999;
  write_checkpoint(dir, again);
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(dir)) left.push_back(e.path().filename().string());
  EXPECT_EQ(left, std::vector<std::string>{"step_00000100"});
  LoadedCheckpoint c = read_checkpoint(dir / "step_00000100");
  EXPECT_EQ(c.state.tokens, 999);
  EXPECT_EQ(c.model.size(), 1u);
  EXPECT_EQ(c.model.at("w").to_vector<float>(), std::vector<float>(6, 7.0f));
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
  EXPECT_NE(testing::error_message<io::ConfigError>(
                [] { parse_trainer_state("step: 1\ntokens: 0\nworld_size: 1\nrecent_losses: [\"1.5\", nan]\n", "t.yaml"); })
                .find("recent_losses: entry 1 is not a finite number"),
            std::string::npos);
}

TEST(Checkpoint, ABadTrainerStateIsRejectedNamingItsFile) {
  fs::path dir = testing::scratch_dir("ckpt_bad_state");
  CheckpointContents c = contents(3);
  c.state.world_size = 0;  // complete and checksummed, but not a valid state
  fs::path written = write_checkpoint(dir, c);
  EXPECT_EQ(testing::error_message<io::FormatError>([&] { read_checkpoint(written); }),
            (written / "trainer.yaml").string() + ": world_size: expected a positive integer, got \"0\" (line 5)");
  fs::remove_all(dir);
}

TEST(Checkpoint, TheSpikeGuardWindowRoundTripsExactly) {
  TrainerState s;
  s.recent_losses = {2.302585092994046, 0.1 + 0.2, 1e-300, 123456789.125};
  EXPECT_EQ(parse_trainer_state(trainer_state_yaml(s), "t.yaml").recent_losses, s.recent_losses);
}

}  // namespace
}  // namespace ponder::train
