// Runs a command body and maps exceptions to exit statuses with a one-line message: errors in the
// input (recipes, files, arguments) are 2, failures while running are 1.
#pragma once

#include <functional>

namespace ponder::cli {

// Marks the end of input validation: errors before it are the user's input (exit 2), after it a
// runtime failure (exit 1).
class Phase {
 public:
  void running() { running_ = true; }
  bool is_running() const { return running_; }
  // Ranks other than 0 of a job leave bad input to rank 0, which prints the one message for all of
  // them (see guarded). A failure while running is printed by whichever rank meets it.
  void defer_to_rank_zero() { deferring_ = true; }
  bool defers_input_errors() const { return deferring_ && !running_; }

 private:
  bool running_ = false;
  bool deferring_ = false;
};

int guarded(const std::function<int(Phase&)>& body);

}  // namespace ponder::cli
