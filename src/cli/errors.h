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
  // Ranks other than 0 of a job reject bad input silently: rank 0 prints the one message for all
  // of them. A failure while running is printed by whichever rank meets it.
  void quiet() { quiet_ = true; }
  bool is_silent() const { return quiet_ && !running_; }

 private:
  bool running_ = false;
  bool quiet_ = false;
};

int guarded(const std::function<int(Phase&)>& body);

}  // namespace ponder::cli
