// The ponder command as a user runs it: exit codes, the first line on stderr, and the
// train -> resume -> export flow on a tiny recipe.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <set>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "data/dataset.h"
#include "support/python.h"
#include "tensor/device.h"

namespace {
namespace fs = std::filesystem;

struct Result {
  int status;
  std::string output;  // stdout and stderr
};

// stdout and stderr together, or stdout alone.
Result ponder(const std::string& args, bool with_stderr = true) {
  std::string cmd = std::string(PONDER_BINARY) + " " + args + (with_stderr ? " 2>&1" : " 2>/dev/null");
  FILE* pipe = ::popen(cmd.c_str(), "r");
  Result r{-1, ""};
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) r.output.append(buf.data(), n);
  int status = ::pclose(pipe);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

fs::path write_recipe(const fs::path& dir, const std::string& text) {
  fs::path p = dir / "r.yaml";
  std::ofstream(p) << text;
  return p;
}

const char* kTiny = R"(model: {family: transformer, vocab_size: 100, dim: 32, layers: 1, heads: 2, ffn_hidden: 64}
data: {task: reverse, seq_len: 64, task_eval_examples: 8}
optim: {name: adamw, lr: 3.0e-3}
train: {steps: 4}
batch: {global_tokens: 128}
runtime: {device: cpu}
log: {every: 2}
eval: {exact_match: 4}
checkpoint: {every: 2}
)";

TEST(Cli, UsageErrorsExitWithTwo) {
  EXPECT_EQ(ponder("").status, 2);
  // One line each, naming the problem.
  const fs::path dir = ponder::testing::scratch_dir("cli_usage");
  const std::string recipe = write_recipe(dir, kTiny).string();
  for (auto [args, line] : {std::pair<std::string, std::string>{"frobnicate", "unknown command 'frobnicate'"},
                            {"bench " + recipe + " --steps 0", "--steps: Value 0 not in range 1 to 1048576"},
                            {"generate run --seed -1", "--seed: expected a seed from 0 to 18446744073709551615, got -1"},
                            {"generate run --temperature nan", "--temperature: expected a number of at least 0, got nan"},
                            {"plan " + recipe + " --tokens-per-s 0", "--tokens-per-s: expected a number above 0, got 0"}}) {
    const Result r = ponder(args);
    EXPECT_EQ(r.status, 2) << args;
    EXPECT_EQ(r.output, "ponder: " + line + " (see --help)\n") << args;
  }
  fs::remove_all(dir);
  Result v = ponder("--version");
  EXPECT_EQ(v.status, 0);
  EXPECT_EQ(first_line(v.output), "ponder 0.1.0");
  EXPECT_EQ(ponder("train --help").status, 0);
  EXPECT_EQ(ponder("train /nonexistent.yaml").status, 2);
}

TEST(Cli, BadRecipesGiveOneLineAndExitTwo) {
  fs::path dir = ponder::testing::scratch_dir("cli_bad");
  std::string bad = kTiny;
  bad.replace(bad.find("lr: 3.0e-3"), 10, "lr: fast");
  Result r = ponder("check " + write_recipe(dir, bad).string());
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(first_line(r.output), "ponder: optim.lr: expected a positive number, got \"fast\" (line 3)");
  r = ponder("check " + write_recipe(dir, kTiny).string() + " --set model.hedas=3");
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(first_line(r.output), "ponder: unknown key model.hedas (from --set); did you mean \"heads\"?");
  r = ponder("check " + write_recipe(dir, kTiny).string() + " --set data.task=maze:n=10");
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(first_line(r.output), "ponder: task \"maze\": n=10 is invalid (allowed: 5, 7, ..., 39)");
  r = ponder("check " + write_recipe(dir, kTiny).string() + " --set data.task=sudok");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(first_line(r.output).find("unknown task \"sudok\""), std::string::npos) << r.output;
  // What train would refuse about the data, check refuses too.
  r = ponder("check " + write_recipe(dir, kTiny).string() + " --set model.vocab_size=99");
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(first_line(r.output),
            "ponder: model.vocab_size: 99 is smaller than the 100 tokens of the character tokenizer that data.task uses");
  r = ponder("check " + write_recipe(dir, kTiny).string() + " --set data.task= --set data.train=" +
             (dir / "missing.bin").string());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(first_line(r.output).find("missing.bin"), std::string::npos) << r.output;
  r = ponder("check " + write_recipe(dir, kTiny).string() + " --set optim.lr=.inf");
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(first_line(r.output), "ponder: optim.lr: expected a positive number, got \".inf\" (from --set)");
  r = ponder("plan " + write_recipe(dir, kTiny).string() + " --gpus 3");  // 128 tokens: two rows of 64
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(first_line(r.output),
            "ponder: batch.global_tokens: 128 is not a multiple of data.seq_len × world size (64 × 3) (line 5)");
  r = ponder("check " + write_recipe(dir, kTiny).string() + " --set data.task=maze:n=11,loops=2");
  EXPECT_EQ(r.status, 0) << r.output;
  r = ponder("check " + write_recipe(dir, kTiny).string());
  EXPECT_EQ(r.status, 0) << r.output;
  fs::remove_all(dir);
}

// --gpus asks for more GPUs than are visible (none here, or fewer than 4096 anywhere), or for
// GPUs with a CPU recipe: one line, exit 2, no run directory.
TEST(Cli, GpusBeyondTheVisibleDevicesAreRefused) {
  fs::path dir = ponder::testing::scratch_dir("cli_gpus");
  const std::string train = "train " + write_recipe(dir, kTiny).string() + " -o " + (dir / "run").string();
  Result r = ponder(train + " --gpus 4096");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(first_line(r.output).find("ponder: --gpus 4096: only "), std::string::npos) << r.output;
  EXPECT_NE(first_line(r.output).find(" visible"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir / "run"));
  if (ponder::cuda_device_count() > 0) {
    r = ponder(train + " --gpus 1");
    EXPECT_EQ(r.status, 2);
    EXPECT_EQ(first_line(r.output), "ponder: --gpus 1: the recipe trains on the CPU (runtime.device: cpu)");
  }
  fs::remove_all(dir);
}

TEST(Cli, TrainResumeExportFlow) {
  fs::path dir = ponder::testing::scratch_dir("cli_flow");
  fs::path recipe = write_recipe(dir, kTiny), run = dir / "run";
  Result r = ponder("train " + recipe.string() + " -o " + run.string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(fs::exists(run / "recipe.yaml"));
  EXPECT_TRUE(fs::exists(run / "metrics.jsonl"));
  EXPECT_TRUE(fs::exists(run / "log.txt"));
  EXPECT_TRUE(fs::exists(run / "checkpoints" / "step_00000004" / "COMPLETE"));

  // An existing run is not overwritten by accident, nor replaced (--force) by a recipe that fails.
  r = ponder("train " + recipe.string() + " -o " + run.string());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(first_line(r.output).find("already holds a run"), std::string::npos) << r.output;
  r = ponder("train " + recipe.string() + " -o " + run.string() + " --force --set model.vocab_size=50");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(first_line(r.output).find("model.vocab_size: 50 is smaller than"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(run / "checkpoints" / "step_00000004" / "COMPLETE"));
  // A run refused at the start leaves no directory behind to block the next.
  r = ponder("train " + recipe.string() + " -o " + (dir / "refused").string() + " --set model.vocab_size=50");
  EXPECT_EQ(r.status, 2);
  EXPECT_FALSE(fs::exists(dir / "refused"));

  // Finished runs resume only with more steps.
  r = ponder("resume " + run.string());
  EXPECT_EQ(r.status, 2);
  r = ponder("resume " + run.string() + " --set train.steps=6");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(fs::exists(run / "checkpoints" / "step_00000006" / "COMPLETE"));
  r = ponder("resume " + run.string() + " --set train.steps=8 --set model.dim=64");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(first_line(r.output).find("model: differs"), std::string::npos) << r.output;

  r = ponder("export " + run.string() + " -o " + (dir / "out").string() + " --dtype f32");
  ASSERT_EQ(r.status, 0) << r.output;
  auto config = nlohmann::json::parse(std::ifstream(dir / "out" / "config.json"));
  EXPECT_EQ(config["model_type"], "llama");
  EXPECT_EQ(config["hidden_size"], 32);
  EXPECT_EQ(config["vocab_size"], 100);
  EXPECT_TRUE(fs::exists(dir / "out" / "model.safetensors"));
  // The run's tokenizer ships with the export, for ponder and for transformers' AutoTokenizer.
  EXPECT_EQ(config["bos_token_id"], 1);
  EXPECT_EQ(config["eos_token_id"], 2);
  EXPECT_EQ(config["pad_token_id"], 0);
  EXPECT_TRUE(fs::exists(dir / "out" / "char_tokenizer.json"));
  auto tokenizer = nlohmann::json::parse(std::ifstream(dir / "out" / "tokenizer.json"));
  EXPECT_EQ(tokenizer["model"]["vocab"].size(), 100u);
  auto tokenizer_config = nlohmann::json::parse(std::ifstream(dir / "out" / "tokenizer_config.json"));
  EXPECT_EQ(tokenizer_config["eos_token"], "</s>");
  EXPECT_EQ(tokenizer_config["model_max_length"], 64);
  r = ponder("export " + run.string() + " -o " + (dir / "out").string());
  EXPECT_EQ(r.status, 2);  // never overwrites an export, nor anything else
  fs::create_directories(dir / "mine");
  std::ofstream(dir / "mine" / "config.json") << "{}";
  r = ponder("export " + run.string() + " -o " + (dir / "mine").string());
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(first_line(r.output), "ponder: " + (dir / "mine").string() +
                                      ": already exists and is not an empty directory; export into a new or empty one");
  EXPECT_EQ(nlohmann::json::parse(std::ifstream(dir / "mine" / "config.json")), nlohmann::json::object());
  const fs::path pairs = dir / "pairs.jsonl";
  std::ofstream(pairs) << R"({"instruction": "reverse:12", "response": "21"})" << "\n";
  r = ponder("eval " + (dir / "out").string() + " --data " + pairs.string() + " --json " + pairs.string());
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(first_line(r.output), "ponder: --json " + pairs.string() + ": already exists; choose another file");
  r = ponder("export " + run.string() + " -o " + (dir / "out2").string() + " --ema");
  EXPECT_EQ(r.status, 2);  // this recipe kept no EMA
  EXPECT_NE(first_line(r.output).find("no EMA weights"), std::string::npos) << r.output;
  fs::remove_all(dir);
}

// Data commands. Everything but the report's first line (the source path) is the same for equal data.
std::string report_body(const std::string& report) { return report.substr(report.find('\n') + 1); }

void write_lines(const fs::path& path, const std::vector<std::string>& lines) {
  std::ofstream out(path);
  for (const std::string& line : lines) out << line << "\n";
}

TEST(Cli, DataSynthThenInspect) {
  fs::path dir = ponder::testing::scratch_dir("cli_synth");
  const fs::path out = dir / "reverse";
  Result r = ponder("data synth reverse --n 50 --seed 3 --eval 10 -o " + out.string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(fs::exists(out / "shard_000000.h5"));
  EXPECT_TRUE(fs::exists(out / "char_tokenizer.json"));
  EXPECT_TRUE(fs::exists(out / "eval" / "shard_000000.h5"));
  EXPECT_FALSE(fs::exists(dir / "reverse.partial"));

  r = ponder("data inspect " + out.string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("samples      50 (50 instruction, 0 plain text)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("  instruction: <bos><inst>reverse:"), std::string::npos) << r.output;  // decoded
  r = ponder("data inspect " + (out / "eval" / "shard_000000.h5").string() + " --samples 0");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("samples      10 (10 instruction"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("sample 0"), std::string::npos) << r.output;

  // A task small enough that raw training draws hit the held-out set: the shards still never share an instruction.
  const fs::path small = dir / "small";
  ASSERT_EQ(ponder("data synth arithmetic:digits=1 --n 200 --seed 5 --eval 40 -o " + small.string()).status, 0);
  std::set<std::vector<int32_t>> held_out;
  const ponder::data::Dataset eval_shards({small / "eval"}), train_shards({small});
  for (int64_t i = 0; i < eval_shards.size(); ++i) held_out.insert(eval_shards.get(i).instruction);
  ASSERT_EQ(train_shards.size(), 200);
  for (int64_t i = 0; i < train_shards.size(); ++i) {
    EXPECT_FALSE(held_out.count(train_shards.get(i).instruction)) << "training sample " << i << " is held out";
  }

  // The same seed gives the same data; another seed other data.
  const std::string first = report_body(ponder("data inspect " + out.string()).output);
  ASSERT_EQ(ponder("data synth reverse --n 50 --seed 3 --eval 10 -o " + (dir / "again").string()).status, 0);
  EXPECT_EQ(report_body(ponder("data inspect " + (dir / "again").string()).output), first);
  ASSERT_EQ(ponder("data synth reverse --n 50 --seed 4 -o " + (dir / "other").string()).status, 0);
  EXPECT_NE(report_body(ponder("data inspect " + (dir / "other").string()).output), first);

  // An existing output is replaced only with --force.
  r = ponder("data synth sort --n 5 -o " + out.string());
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(first_line(r.output), "ponder: " + out.string() + ": is not empty; pass --force to replace it");
  EXPECT_EQ(report_body(ponder("data inspect " + out.string()).output), first);
  r = ponder("data synth sort --n 5 -o " + out.string() + " --force");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(ponder("data inspect " + out.string()).output.find("samples      5 "), std::string::npos);
  EXPECT_FALSE(fs::exists(out / "eval"));

  r = ponder("data synth frobnicate --n 5 -o " + (dir / "bad").string());
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(first_line(r.output).rfind("ponder: unknown task \"frobnicate\" (known tasks: ", 0), 0u) << r.output;
  EXPECT_FALSE(fs::exists(dir / "bad"));
  EXPECT_FALSE(fs::exists(dir / "bad.partial"));

  r = ponder("data inspect " + (dir / "missing").string());
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(first_line(r.output).rfind("ponder: ", 0), 0u) << r.output;
  fs::remove_all(dir);
}

TEST(Cli, DataPrepareThenInspect) {
  fs::path dir = ponder::testing::scratch_dir("cli_prepare");
  ASSERT_EQ(ponder("data synth reverse --n 1 -o " + (dir / "chars").string()).status, 0);  // a tokenizer to use
  write_lines(dir / "in.jsonl", {R"({"instruction": "2+2", "response": "4"})", "",
                                 R"({"text": "plain text", "condition": "easy"})"});
  const fs::path out = dir / "out";
  Result r = ponder("data prepare " + (dir / "in.jsonl").string() + " --tokenizer " + (dir / "chars").string() + " -o " +
                    out.string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("prepared 2 samples (1 instruction, 1 text) from 3 lines"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(out / "shard_000000.h5"));
  EXPECT_TRUE(fs::exists(out / "char_tokenizer.json"));  // the tokenizer travels with the shards
  EXPECT_FALSE(fs::exists(dir / "out.partial"));
  r = ponder("data inspect " + out.string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("  instruction: <bos><inst>2+2<resp>"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("  response:    <bos><|easy|>plain text<eos>"), std::string::npos) << r.output;
  // Training on them with rows shorter than the text says that packing cuts it.
  r = ponder("train " + write_recipe(dir, kTiny).string() + " -o " + (dir / "run").string() +
             " --set data.task= --set data.train=[" + out.string() +
             "] --set data.seq_len=8 --set batch.global_tokens=16 --set train.steps=1 --set eval.exact_match=0");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("data.train: 1 of 2 samples are longer than data.seq_len 8 and are cut to that length, "
                          "their responses first"), std::string::npos) << r.output;

  // Bad input: one line naming the problem, exit 2, and nothing written.
  r = ponder("data prepare " + (dir / "nope.jsonl").string() + " --tokenizer " + (dir / "chars").string() + " -o " +
             (dir / "o2").string());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(first_line(r.output).find("nope.jsonl"), std::string::npos) << r.output;
  write_lines(dir / "bad.jsonl", {R"({"text": "fine"})", R"({"text": "fine too"})", R"({"text": "broken)"});
  r = ponder("data prepare " + (dir / "bad.jsonl").string() + " --tokenizer " + (dir / "chars").string() + " -o " +
             (dir / "o2").string());
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(first_line(r.output).rfind("ponder: " + (dir / "bad.jsonl").string() + ":3: not valid JSON", 0), 0u) << r.output;
  EXPECT_FALSE(fs::exists(dir / "o2"));
  EXPECT_FALSE(fs::exists(dir / "o2.partial"));
  r = ponder("data prepare " + (dir / "in.jsonl").string() + " --tokenizer " + (dir / "chars").string() + " -o " +
             out.string());
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(first_line(r.output), "ponder: " + out.string() + ": is not empty; pass --force to replace it");
  r = ponder("data prepare " + (dir / "in.jsonl").string() + " -o " + (dir / "o3").string());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(first_line(r.output).find("--tokenizer"), std::string::npos) << r.output;

  // A stale .partial of a killed run is cleared; --force replaces the output.
  fs::create_directories(dir / "out.partial" / "junk");
  r = ponder("data prepare " + (dir / "in.jsonl").string() + " --train-tokenizer 40 -o " + out.string() + " --force");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(fs::exists(out / "tokenizer.model"));
  EXPECT_FALSE(fs::exists(out / "char_tokenizer.json"));
  EXPECT_FALSE(fs::exists(dir / "out.partial"));
  fs::remove_all(dir);
}

// An SST run with adapters exports as a Llama backbone plus its blends; generate and eval run the
// export as the SST it was, deliberation depths included.
TEST(Cli, SstExportGeneratesAndEvaluatesLikeItsRun) {
  fs::path dir = ponder::testing::scratch_dir("cli_sst");
  std::string recipe = kTiny;
  recipe.replace(recipe.find("family: transformer"), 19, "family: sst, deliberation: 2, lora: {rank: 2}");
  const std::string run = (dir / "run").string(), out = (dir / "out").string();
  ASSERT_EQ(ponder("train " + write_recipe(dir, recipe).string() + " -o " + run).status, 0);
  Result r = ponder("export " + run + " -o " + out + " --dtype f32");
  ASSERT_EQ(r.status, 0) << r.output;
  const std::string greedy = " --prompt reverse:1234 --max-new-tokens 8";
  const Result from_run = ponder("generate " + run + greedy, false);
  ASSERT_EQ(from_run.status, 0) << from_run.output;
  EXPECT_EQ(ponder("generate " + out + greedy, false).output, from_run.output);
  write_lines(dir / "pairs.jsonl", {R"({"instruction": "reverse:123", "response": "321", "task": "reverse"})"});
  const std::string json_out = (dir / "eval.json").string();
  r = ponder("eval " + out + " --data " + (dir / "pairs.jsonl").string() + " --depths --examples 1 --json " + json_out, false);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("sst_deliberation_iters=4"), std::string::npos) << r.output;
  const nlohmann::json j = nlohmann::json::parse(std::ifstream(json_out));
  EXPECT_EQ(j["family"], "sst");
  ASSERT_EQ(j["depths"].size(), 3u);
  EXPECT_EQ(j["depths"][1]["depth"], "2");
  EXPECT_EQ(j["depths"][1]["compute"], 1.0);  // the recipe's depth
  EXPECT_NE(r.output.find("examples at depth 2:"), std::string::npos) << r.output;
  EXPECT_EQ(j["depths"][1]["model_metrics"]["sst_deliberation_iters"], 2.0);
  fs::remove_all(dir);
}

TEST(Cli, GenerateFromARunAndItsExport) {
  fs::path dir = ponder::testing::scratch_dir("cli_generate");
  const std::string run = (dir / "run").string(), out = (dir / "out").string();
  ASSERT_EQ(ponder("train " + write_recipe(dir, kTiny).string() + " -o " + run).status, 0);
  ASSERT_EQ(ponder("export " + run + " -o " + out + " --dtype f32").status, 0);

  // The completion streams to stdout, the same from the run and its export; a summary goes to stderr.
  const std::string greedy = " --prompt reverse:1234 --max-new-tokens 12";
  const Result from_run = ponder("generate " + run + greedy, false);
  ASSERT_EQ(from_run.status, 0);
  ASSERT_FALSE(from_run.output.empty());
  EXPECT_EQ(from_run.output.find('\n'), from_run.output.size() - 1) << from_run.output;
  EXPECT_EQ(ponder("generate " + out + greedy, false).output, from_run.output);
  const Result both = ponder("generate " + out + greedy);
  EXPECT_NE(both.output.find(" tokens in "), std::string::npos) << both.output;
  EXPECT_NE(both.output.find("stopped at "), std::string::npos) << both.output;

  // JSONL in, JSONL out, with the token ids on request.
  write_lines(dir / "prompts.jsonl", {R"({"prompt": "reverse:1234"})", "", R"({"prompt": "reverse:98"})"});
  const Result file = ponder("generate " + out + " --file " + (dir / "prompts.jsonl").string() + " --max-new-tokens 12 --ids", false);
  ASSERT_EQ(file.status, 0);
  std::istringstream lines(file.output);
  std::string line;
  std::vector<nlohmann::json> records;
  while (std::getline(lines, line)) records.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(records.size(), 2u) << file.output;
  EXPECT_EQ(records[0]["prompt"], "reverse:1234");
  EXPECT_EQ(records[0]["completion"].get<std::string>() + "\n", from_run.output);
  EXPECT_EQ(records[1]["prompt"], "reverse:98");
  const auto prompt_ids = records[1]["prompt_ids"].get<std::vector<int>>();
  ASSERT_EQ(prompt_ids.size(), 2u + 10u + 1u);  // bos, <inst>, "reverse:98", <resp>
  EXPECT_EQ(prompt_ids.front(), 1);
  EXPECT_EQ(prompt_ids.back(), 4);
  EXPECT_LE(records[1]["completion_ids"].size(), 12u);

  // Sampling replays under a seed.
  const std::string sampled = greedy + " --temperature 1.0 --top-k 20 --top-p 0.95 --seed 5";
  const Result s1 = ponder("generate " + run + sampled, false), s2 = ponder("generate " + run + sampled, false);
  ASSERT_EQ(s1.status, 0);
  EXPECT_EQ(s1.output, s2.output);

  // Bad input: one line naming the problem, exit 2.
  auto refused = [&](const std::string& args, const std::string& expected) {
    const Result r = ponder("generate " + args);
    EXPECT_EQ(r.status, 2) << args << "\n" << r.output;
    EXPECT_NE(first_line(r.output).find(expected), std::string::npos) << args << "\n" << r.output;
  };
  refused((dir / "nowhere").string() + " --prompt x", "no such model");
  fs::copy(out, dir / "no_weights");
  fs::remove(dir / "no_weights" / "model.safetensors");
  refused((dir / "no_weights").string() + " --prompt x", "no model.safetensors");
  refused(out + " --prompt x --frobnicate", "frobnicate");
  refused(out, "give one of --prompt TEXT or --file JSONL");
  refused(out + " --prompt x --file " + (dir / "prompts.jsonl").string(), "excludes");
  refused(out + " --prompt x --ids", "--ids");
  refused(out + " --prompt x --ema", "is an export");
  refused(out + " --prompt x --top-p 0", "top_p");
  const std::string long_prompt = " --prompt " + std::string(70, '7');
  refused(out + long_prompt, "no room in the model's context of 64 tokens");
  const Result truncated = ponder("generate " + out + long_prompt + " --max-new-tokens 4 --truncate", false);
  EXPECT_EQ(truncated.status, 0) << truncated.output;
  write_lines(dir / "bad.jsonl", {R"({"prompt": "reverse:1"})", R"({"instruction": "reverse:1"})"});
  refused(out + " --file " + (dir / "bad.jsonl").string(), "bad.jsonl:2: expected {\"prompt\": TEXT}");
  fs::remove_all(dir);
}

// ponder eval on a model that memorised four pairs (every answer right, loss near 0) and on an
// untrained one (no answer right, perplexity about the vocabulary's 100 tokens).
TEST(Cli, EvalScoresMemorisedAndUntrainedModels) {
  fs::path dir = ponder::testing::scratch_dir("cli_eval");
  ASSERT_EQ(ponder("data synth reverse --n 1 -o " + (dir / "chars").string()).status, 0);  // the character tokenizer
  const std::vector<std::string> pairs = {R"({"instruction": "reverse:123", "response": "321")",
                                          R"({"instruction": "reverse:4567", "response": "7654")",
                                          R"({"instruction": "reverse:98", "response": "89")",
                                          R"({"instruction": "reverse:5012", "response": "2105")"};
  std::vector<std::string> train_lines, eval_lines;
  for (const std::string& p : pairs) {
    train_lines.push_back(p + "}");
    eval_lines.push_back(p + R"(, "task": "reverse"})");
  }
  write_lines(dir / "train.jsonl", train_lines);
  write_lines(dir / "eval.jsonl", eval_lines);
  const std::string shards = (dir / "shards").string(), eval_jsonl = (dir / "eval.jsonl").string();
  ASSERT_EQ(ponder("data prepare " + (dir / "train.jsonl").string() + " --tokenizer " + (dir / "chars").string() +
                   " -o " + shards).status, 0);
  const fs::path recipe = write_recipe(dir, R"(model: {family: transformer, vocab_size: 100, dim: 64, layers: 2, heads: 2, ffn_hidden: 128}
data: {train: [)" + shards + R"(], seq_len: 32}
optim: {name: adamw, lr: 1.0e-2}
schedule: {name: cosine, warmup_steps: 5}
train: {steps: 30}
batch: {global_tokens: 128}
runtime: {device: cpu}
log: {every: 10}
checkpoint: {every: 30}
)");
  const std::string run = (dir / "run").string(), fresh = (dir / "fresh").string(), json_out = (dir / "eval.json").string();
  ASSERT_EQ(ponder("train " + recipe.string() + " -o " + run).status, 0);
  ASSERT_EQ(ponder("train " + recipe.string() + " -o " + fresh + " --set train.steps=6 --set optim.lr=1e-9").status, 0);

  Result r = ponder("eval " + run + " --data " + eval_jsonl + " --depths --examples 2 --json " + json_out, false);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("depth         compute"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("100.0% (4/4)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("examples at depth trained:\n  reverse:123 -> 321   (reference 321, correct)\n"
                          "  reverse:4567 -> 7654   (reference 7654, correct)\n"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("reverse:98 ->"), std::string::npos) << r.output;
  nlohmann::json j = nlohmann::json::parse(std::ifstream(json_out));
  EXPECT_EQ(j["family"], "transformer");
  EXPECT_EQ(j["samples"], 4);
  ASSERT_EQ(j["depths"].size(), 1u);  // the baseline has only its trained depth
  EXPECT_EQ(j["depths"][0]["depth"], "trained");
  EXPECT_EQ(j["depths"][0]["exact_match"], 1.0);
  EXPECT_LT(j["depths"][0]["loss"].get<double>(), 0.1);
  // The shards themselves, their verifier given by --task, the first two only.
  r = ponder("eval " + run + " --data " + shards + " --task reverse --max-samples 2", false);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("2 samples"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("100.0% (2/2)"), std::string::npos) << r.output;

  const std::string fresh_json = (dir / "fresh_eval.json").string();  // --json never overwrites
  ASSERT_EQ(ponder("eval " + fresh + " --data " + eval_jsonl + " --json " + fresh_json, false).status, 0);
  j = nlohmann::json::parse(std::ifstream(fresh_json));
  EXPECT_EQ(j["depths"][0]["exact_match"], 0.0);
  EXPECT_GT(j["depths"][0]["perplexity"].get<double>(), 25.0);
  EXPECT_LT(j["depths"][0]["perplexity"].get<double>(), 400.0);

  // Bad input: one line naming the problem, exit 2, and no JSON written.
  const fs::path unwritten = dir / "refused.json";
  auto refused = [&](const std::string& args, const std::string& expected) {
    const Result bad = ponder("eval " + args + " --json " + unwritten.string());
    EXPECT_EQ(bad.status, 2) << args << "\n" << bad.output;
    EXPECT_NE(first_line(bad.output).find(expected), std::string::npos) << args << "\n" << bad.output;
    EXPECT_FALSE(fs::exists(unwritten)) << args;
  };
  refused((dir / "nowhere").string() + " --data " + eval_jsonl, "no such model");
  refused(run + " --data " + (dir / "none.jsonl").string(), "none.jsonl: no such file");
  refused(run + " --data " + eval_jsonl + " --task sortt", "unknown task \"sortt\"");
  refused(run, "--data is required");
  write_lines(dir / "bad.jsonl", {pairs[0] + "}", R"({"instruction": "reverse:1"})"});
  refused(run + " --data " + (dir / "bad.jsonl").string(), "bad.jsonl:2:");
  ASSERT_EQ(ponder("data prepare " + (dir / "train.jsonl").string() + " --train-tokenizer 30 -o " + (dir / "sp").string())
                .status, 0);
  refused(run + " --data " + (dir / "sp").string(), "the shards were made by tokenizer sentencepiece:");
  fs::create_directories(dir / "empty_run" / "checkpoints");
  refused((dir / "empty_run").string() + " --data " + eval_jsonl, "empty_run");
  fs::remove_all(dir);
}

TEST(Cli, PlanPrintsTheBudget) {
  Result r = ponder(std::string("plan ") + PONDER_SOURCE_DIR + "/recipes/quickstart.yaml --gpus 2 --gpu-hour-price 2.5");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("parameters"), std::string::npos);
  EXPECT_NE(r.output.find("on 2 GPU(s)"), std::string::npos);
  EXPECT_NE(r.output.find("cost"), std::string::npos);
}

// ponder bench on CPU with tiny shapes, for every family: the numbers exist, add up (the phases'
// kernel times and the idle time fill the profiled step, never more) and HRM-Text runs at bp 5.
TEST(Cli, BenchTimesTrainingStepsOfEveryFamily) {
  const char* keys[] = {"family", "device", "dtype", "parameters", "tokens_per_step", "backprop_depth", "step_s",
                        "tokens_per_s", "flops_per_token", "tflops", "mfu", "peak_bytes", "breakdown"};
  const char* phases[] = {"gemm_s", "attention_s", "norm_elementwise_s", "loss_s", "optimizer_s"};
  // quickstart.yaml is the transformer baseline's.
  for (const char* recipe : {"hrm_text/tiny.yaml", "quickstart.yaml", "attractor/tiny.yaml", "sst/tiny.yaml"}) {
    const std::string path = std::string(PONDER_SOURCE_DIR) + "/recipes/" + recipe;
    Result r = ponder("bench " + path + " --set runtime.device=cpu --set batch.global_tokens=128 --warmup 0 --steps 1 "
                      "--profile-steps 1 --json", /*with_stderr=*/false);
    ASSERT_EQ(r.status, 0) << recipe << ": " << r.output;
    const nlohmann::json j = nlohmann::json::parse(r.output);
    for (const char* key : keys) EXPECT_TRUE(j.contains(key)) << recipe << " lacks " << key;
    EXPECT_GT(j["tokens_per_s"].get<double>(), 0) << recipe;
    EXPECT_GT(j["tflops"].get<double>(), 0) << recipe;
    EXPECT_EQ(j["tokens_per_step"], 128) << recipe;
    const nlohmann::json& b = j["breakdown"];
    double kernels = 0;
    for (const char* phase : phases) {
      ASSERT_TRUE(b.contains(phase)) << recipe << " lacks breakdown." << phase;
      kernels += b[phase].get<double>();
    }
    EXPECT_GT(b["gemm_s"].get<double>(), 0) << recipe;
    EXPECT_GT(b["loss_s"].get<double>(), 0) << recipe;
    EXPECT_GT(b["optimizer_s"].get<double>(), 0) << recipe;
    EXPECT_LE(kernels, b["step_s"].get<double>()) << recipe;
    EXPECT_NEAR(kernels + b["idle_s"].get<double>(), b["step_s"].get<double>(), 1e-9) << recipe;
    EXPECT_EQ(j["backprop_depth"], std::string(recipe) == "hrm_text/tiny.yaml" ? 5 : 0) << recipe;
    // the census: what was held before the profiled step and what it allocated, live at its peak,
    // make up at most that peak (blocks from before may be gone by then), and the peak is the run's
    const nlohmann::json& m = b["memory_at_peak"];
    int64_t at_peak = m["held_before_bytes"].get<int64_t>();
    for (const auto& blocks : m["blocks"]) at_peak += blocks["bytes"].get<int64_t>() * blocks["count"].get<int64_t>();
    EXPECT_FALSE(m["blocks"].empty()) << recipe;
    EXPECT_GT(at_peak, m["held_before_bytes"].get<int64_t>()) << recipe;
    EXPECT_LE(at_peak, m["peak_bytes"].get<int64_t>()) << recipe;
    EXPECT_LE(m["peak_bytes"].get<int64_t>(), j["peak_bytes"].get<int64_t>()) << recipe;
  }
  Result table = ponder(std::string("bench ") + PONDER_SOURCE_DIR + "/recipes/hrm_text/tiny.yaml --set runtime.device=cpu "
                        "--set batch.global_tokens=128 --warmup 0 --steps 1 --profile-steps 1");
  ASSERT_EQ(table.status, 0) << table.output;
  for (const char* label : {"tokens/s", "model TFLOP/s", "MFU", "peak memory", "gemm", "optimizer", "idle",
                            "memory at the profiled steps' peak"})
    EXPECT_NE(table.output.find(label), std::string::npos) << label << " missing from\n" << table.output;
  EXPECT_EQ(ponder(std::string("bench ") + PONDER_SOURCE_DIR + "/recipes/hrm_text/tiny.yaml --steps 0").status, 2);
  Result bad = ponder(std::string("bench ") + PONDER_SOURCE_DIR + "/recipes/hrm_text/tiny.yaml --set optim.lr=fast");
  EXPECT_EQ(bad.status, 2);
  EXPECT_EQ(first_line(bad.output).rfind("ponder: optim.lr:", 0), 0u) << bad.output;
}

}  // namespace
