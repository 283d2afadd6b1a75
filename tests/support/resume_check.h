// The exact-resume check shared by the CPU and GPU trainer tests: a run stopped part-way (as by
// SIGTERM) and resumed from its checkpoint must log the same losses and end with the same
// parameters, bit for bit, as the same run uninterrupted.
#pragma once

#include <filesystem>
#include <vector>

#include "io/recipe.h"

namespace ponder::testing {

// Every logged training loss of a run directory's metrics.jsonl, in order.
std::vector<double> logged_losses(const std::filesystem::path& run_dir);

// Runs `recipe` uninterrupted, then again stopped after `stop_step` steps and resumed from the
// checkpoint the stop wrote; expects identical per-step losses and final parameters.
void expect_resume_reproduces_the_run(const io::Recipe& recipe, int64_t stop_step);

}  // namespace ponder::testing
