// `ponder demo`: a tiny training run on the CPU, built directly on the ops, that shows the loss
// falling. (The quickstart recipe replaces it once recipes and the trainer exist.)
#pragma once

namespace ponder::cli {

struct DemoOptions {
  int steps = 400;
  int log_every = 25;
  unsigned seed = 0;
};

// Returns the process exit code.
int run_demo(const DemoOptions& options);

}  // namespace ponder::cli
