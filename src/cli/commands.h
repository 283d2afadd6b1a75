// The ponder subcommands. Each returns the process exit status: 0 ok, 1 runtime failure,
// 2 invalid usage or input (the first line on stderr says what went wrong).
#pragma once

#include <string>
#include <vector>

namespace ponder::cli {

struct TrainArgs {
  std::string recipe;
  std::string run_dir;  // default: runs/<recipe name>
  std::vector<std::string> overrides;
  bool force = false;   // start over in an existing run directory
};
int train(const TrainArgs& args);

struct ResumeArgs {
  std::string run_dir;
  std::vector<std::string> overrides;
};
int resume(const ResumeArgs& args);

struct ExportArgs {
  std::string source;   // run or checkpoint directory
  std::string out_dir;
  bool ema = false;
  std::string dtype = "bf16";
};
int export_model(const ExportArgs& args);

struct PlanArgs {
  std::string recipe;
  std::vector<std::string> overrides;
  int64_t gpus = 1;
  double gpu_hour_price = 0;
  double tokens_per_s = 0;
};
int plan(const PlanArgs& args);
int check(const std::string& recipe, const std::vector<std::string>& overrides);

}  // namespace ponder::cli
