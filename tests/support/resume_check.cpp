#include "support/resume_check.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "support/python.h"
#include "train/session.h"
#include "train/stop_signal.h"
#include "train/trainer.h"

namespace ponder::testing {
namespace {
namespace fs = std::filesystem;
using train::BatchSource;

// Stops the run (as SIGTERM would) once the given number of micro-batches have been drawn.
class StopAfter : public BatchSource {
 public:
  StopAfter(std::unique_ptr<BatchSource> inner, int64_t micro_batches) : inner_(std::move(inner)), left_(micro_batches) {}
  models::PackedBatch next() override {
    if (--left_ == 0) train::request_stop();
    return inner_->next();
  }
  std::string state() const override { return inner_->state(); }
  void restore(const std::string& s) override { inner_->restore(s); }

 private:
  std::unique_ptr<BatchSource> inner_;
  int64_t left_;
};

std::vector<std::vector<float>> values_of(const TensorList& params) {
  std::vector<std::vector<float>> out;
  for (const Tensor& p : params) out.push_back(p.to(DType::f32).to_vector<float>());
  return out;
}

}  // namespace

std::vector<double> logged_losses(const fs::path& run_dir) {
  std::vector<double> out;
  std::ifstream in(run_dir / "metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    if (j.contains("loss")) out.push_back(j["loss"].get<double>());
  }
  return out;
}

void expect_resume_reproduces_the_run(const io::Recipe& recipe, int64_t stop_step) {
  fs::path a = scratch_dir("resume_a"), b = scratch_dir("resume_b");
  std::vector<std::vector<float>> final_a;
  {
    train::Trainer t(train::make_context(recipe, a));
    EXPECT_EQ(t.run(), train::RunEnd::finished);
    final_a = values_of(t.model().parameters());
  }
  {
    train::TrainContext ctx = train::make_context(recipe, b);
    ctx.train_data = std::make_unique<StopAfter>(std::move(ctx.train_data), stop_step * recipe.accumulation());
    train::Trainer t(std::move(ctx));
    EXPECT_EQ(t.run(), train::RunEnd::stopped);
    train::clear_stop();
    EXPECT_EQ(t.state().step, stop_step);
  }
  auto checkpoint = train::newest_complete_checkpoint(b / "checkpoints");
  ASSERT_TRUE(checkpoint.has_value());
  train::Trainer resumed(train::make_context(recipe, b));
  resumed.restore(train::read_checkpoint(*checkpoint));
  EXPECT_EQ(resumed.run(), train::RunEnd::finished);
  EXPECT_EQ(logged_losses(a), logged_losses(b));  // every step's loss, bit for bit, before and after the stop
  EXPECT_EQ(final_a, values_of(resumed.model().parameters()));
  fs::remove_all(a);
  fs::remove_all(b);
}

}  // namespace ponder::testing
