// The ponder subcommands. Each returns the process exit status: 0 ok, 1 runtime failure,
// 2 invalid usage or input (the first line on stderr says what went wrong).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ponder::cli {

struct TrainArgs {
  std::string recipe;
  std::string run_dir;  // default: runs/<recipe name>
  std::vector<std::string> overrides;
  bool force = false;   // start over in an existing run directory
  int64_t gpus = 0;     // > 0: one rank per GPU, started by ponder itself unless a launcher did
};
int train(const TrainArgs& args);

struct ResumeArgs {
  std::string run_dir;
  std::vector<std::string> overrides;
  int64_t gpus = 0;
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
  double gpu_memory_gib = 79;  // what batch.micro_tokens: auto may fill (an H100's free memory)
};
int plan(const PlanArgs& args);

// Training throughput of a recipe on random resident data (train/benchmark.h).
struct BenchArgs {
  std::string recipe;
  std::vector<std::string> overrides;
  int64_t warmup = 2;
  int64_t steps = 5;
  int64_t profile_steps = 2;
  bool json = false;  // one JSON object on stdout instead of the table
};
int bench(const BenchArgs& args);
int check(const std::string& recipe, const std::vector<std::string>& overrides);

struct GenerateArgs {
  std::string source;                 // export, run or checkpoint directory
  std::optional<std::string> prompt;  // one instruction, its completion streamed to stdout
  std::optional<std::string> file;    // or JSONL {"prompt": ...} lines -> {"prompt", "completion"} lines
  int64_t max_new_tokens = 256;
  double temperature = 0.0;           // 0 = greedy
  int64_t top_k = 0;
  double top_p = 1.0;
  uint64_t seed = 0;
  std::string device = "cpu";
  bool ema = false;
  bool truncate = false;              // drop the start of prompts that do not fit the context
  bool ids = false;                   // JSONL output also carries prompt_ids and completion_ids
};
int generate(const GenerateArgs& args);

struct EvalArgs {
  std::string source;       // export, run or checkpoint directory
  std::string data;         // JSONL of instruction/response pairs, or shards
  std::string task;         // verifier of pairs that name no task (empty: exact string match)
  bool depths = false;      // sweep the model's evaluation depths
  std::string json_out;     // also write the results here
  int64_t max_samples = 0;  // 0: all
  int64_t examples = 0;     // answers to print beside their references
  std::string device = "cpu";
  bool ema = false;
};
int eval(const EvalArgs& args);

// ponder data ...: each writes its output directory under DIR.partial and renames it into place.
struct DataPrepareArgs {
  std::string input;            // JSONL
  std::string out_dir;
  std::string tokenizer;        // a .model file or a directory holding a saved tokenizer
  int64_t train_tokenizer = 0;  // or: the vocabulary size of a SentencePiece model to train
  int64_t shard_tokens = int64_t(64) << 20;
  bool no_bos = false, no_eos = false;
  bool force = false;           // replace a non-empty output directory
};
int data_prepare(const DataPrepareArgs& args);

struct DataInspectArgs {
  std::string source;           // a shard or a directory of shards
  std::string tokenizer;        // default: the one saved beside the shards, if any
  int64_t samples = 3;
};
int data_inspect(const DataInspectArgs& args);

struct DataSynthArgs {
  std::string task;             // a task spec for data::make_task
  int64_t examples = 0;
  uint64_t seed = 0;
  int64_t eval_examples = 0;    // held-out examples, written to DIR/eval
  std::string out_dir;
  int64_t shard_tokens = int64_t(64) << 20;
  bool force = false;
};
int data_synth(const DataSynthArgs& args);

}  // namespace ponder::cli
