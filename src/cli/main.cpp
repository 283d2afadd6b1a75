// The ponder command line.
#include <CLI/CLI.hpp>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

#include "cli/commands.h"

#ifndef PONDER_VERSION
#define PONDER_VERSION "unknown"
#endif

namespace {

void add_overrides(CLI::App* cmd, std::vector<std::string>& overrides) {
  cmd->add_option("--set", overrides, "Override a recipe value: key.path=value (repeatable)")->type_name("KEY=VALUE");
}

std::string number_text(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%g", v);
  return buffer;
}

// A finite number that `ok` accepts, else "expected <what>". CLI11's own range checks let nan
// through and print the largest double as their bound.
CLI::Validator finite_number(const std::string& what, const std::function<bool(double)>& ok) {
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        const bool valid = !text.empty() && *end == '\0' && std::isfinite(v) && ok(v);
        return valid ? std::string() : "expected " + what + ", got " + text;
      },
      "NUMBER");
}

CLI::Validator number_in(double low, double high) {
  return finite_number("a number from " + number_text(low) + " to " + number_text(high),
                       [=](double v) { return v >= low && v <= high; });
}
CLI::Validator number_at_least(double low) {
  return finite_number("a number of at least " + number_text(low), [=](double v) { return v >= low; });
}
CLI::Validator number_above(double low) {
  return finite_number("a number above " + number_text(low), [=](double v) { return v > low; });
}

// A seed: 0 to 2^64 - 1 in decimal digits (CLI11 would wrap -1 around to 2^64 - 1).
CLI::Validator seed_value() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        uint64_t v = 0;
        const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), v);
        const bool ok = !text.empty() && error == std::errc() && end == text.data() + text.size();
        return ok ? std::string() : "expected a seed from 0 to 18446744073709551615, got " + text;
      },
      "UINT64");
}

// A usage error as one line, naming the word that is not a command where that is the problem.
int usage_error(const CLI::App& app, const CLI::ParseError& e, int argc, char** argv) {
  std::string what = e.what();
  if (argc > 1 && argv[1][0] != '-') {
    bool known = false;
    for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) known |= sub->check_name(argv[1]);
    if (!known) what = std::string("unknown command '") + argv[1] + "'";
  }
  std::fprintf(stderr, "ponder: %s (see --help)\n", what.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ponder::cli;
  CLI::App app{"ponder: train small reasoning models (HRM-Text, Attractor, SST, Llama baseline)"};
  app.set_version_flag("--version", std::string("ponder ") + PONDER_VERSION);
  app.require_subcommand(1);

  TrainArgs train_args;
  CLI::App* train_cmd = app.add_subcommand("train", "Train a recipe into a run directory");
  train_cmd->add_option("recipe", train_args.recipe, "Recipe YAML file")->required()->check(CLI::ExistingFile);
  train_cmd->add_option("-o,--output", train_args.run_dir, "Run directory (default: runs/<recipe name>)");
  add_overrides(train_cmd, train_args.overrides);
  train_cmd->add_flag("--force", train_args.force, "Start over in a run directory that already holds a run");
  train_cmd->add_option("--gpus", train_args.gpus, "Train on N GPUs of this node, one process each")
      ->check(CLI::Range(1, 1 << 16));

  ResumeArgs resume_args;
  CLI::App* resume_cmd = app.add_subcommand("resume", "Continue a run from its newest complete checkpoint");
  resume_cmd->add_option("run_dir", resume_args.run_dir, "Run directory")->required();
  add_overrides(resume_cmd, resume_args.overrides);
  resume_cmd->add_option("--gpus", resume_args.gpus, "Continue on N GPUs of this node, one process each")
      ->check(CLI::Range(1, 1 << 16));

  ExportArgs export_args;
  CLI::App* export_cmd = app.add_subcommand("export", "Export weights + config for transformers");
  export_cmd->add_option("source", export_args.source, "Run or checkpoint directory")->required();
  export_cmd->add_option("-o,--output", export_args.out_dir, "Output directory")->required();
  export_cmd->add_flag("--ema", export_args.ema, "Export the EMA weights");
  export_cmd->add_option("--dtype", export_args.dtype, "Weight dtype")->check(CLI::IsMember({"bf16", "f32"}));

  GenerateArgs generate_args;
  CLI::App* generate_cmd = app.add_subcommand("generate", "Generate text from an export, run or checkpoint directory");
  generate_cmd->add_option("model", generate_args.source, "Export, run or checkpoint directory")->required();
  auto* prompt_opt = generate_cmd->add_option("--prompt", generate_args.prompt, "An instruction; its completion streams to stdout");
  auto* file_opt = generate_cmd->add_option("--file", generate_args.file, "JSONL of {\"prompt\": ...}; writes {\"prompt\", \"completion\"} lines")
      ->excludes(prompt_opt);
  generate_cmd->add_option("--max-new-tokens", generate_args.max_new_tokens, "Tokens to generate at most")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 30));
  generate_cmd->add_option("--temperature", generate_args.temperature, "Sampling temperature (0 = greedy)")
      ->check(number_at_least(0));
  generate_cmd->add_option("--top-k", generate_args.top_k, "Sample among the k most likely tokens (0 = all)")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 40));
  generate_cmd->add_option("--top-p", generate_args.top_p, "Sample among the most likely tokens holding this probability")
      ->check(number_in(0, 1));
  generate_cmd->add_option("--seed", generate_args.seed, "Seed of the sampling stream")->check(seed_value());
  generate_cmd->add_option("--device", generate_args.device, "Where to run")->check(CLI::IsMember({"cpu", "cuda"}));
  generate_cmd->add_flag("--ema", generate_args.ema, "Use a run's EMA weights");
  generate_cmd->add_flag("--truncate", generate_args.truncate,
                         "Drop the start of a prompt so that it and --max-new-tokens fit the model's context");
  generate_cmd->add_flag("--ids", generate_args.ids, "Also write prompt_ids and completion_ids")->needs(file_opt);

  EvalArgs eval_args;
  CLI::App* eval_cmd = app.add_subcommand("eval", "Loss, perplexity and exact match on held-out pairs, per test-time depth");
  eval_cmd->add_option("model", eval_args.source, "Export, run or checkpoint directory")->required();
  eval_cmd->add_option("--data", eval_args.data,
                       "JSONL of {instruction, response[, task]} records, or a shard file or directory of shards")
      ->required();
  eval_cmd->add_option("--task", eval_args.task, "Task whose verifier checks answers, e.g. sort or sudoku:givens=30 "
                       "(default: a record's task field, else exact string match)");
  eval_cmd->add_flag("--depths", eval_args.depths, "Sweep the model's test-time depths (relative compute), e.g. HRM-Text's H/L cycles");
  eval_cmd->add_option("--json", eval_args.json_out, "Also write the results as JSON to this file");
  eval_cmd->add_option("--max-samples", eval_args.max_samples, "Evaluate the first N samples (0 = all)")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 40));
  eval_cmd->add_option("--examples", eval_args.examples, "Print the first K answers beside their references")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 20));
  eval_cmd->add_option("--device", eval_args.device, "Where to run")->check(CLI::IsMember({"cpu", "cuda"}));
  eval_cmd->add_flag("--ema", eval_args.ema, "Use a run's EMA weights");

  PlanArgs plan_args;
  CLI::App* plan_cmd = app.add_subcommand("plan", "Parameters, FLOPs, memory per GPU, time and cost of a recipe");
  plan_cmd->add_option("recipe", plan_args.recipe, "Recipe YAML file")->required()->check(CLI::ExistingFile);
  plan_cmd->add_option("--gpus", plan_args.gpus, "Number of GPUs")->check(CLI::Range(1, 1 << 20));
  plan_cmd->add_option("--gpu-hour-price", plan_args.gpu_hour_price, "USD per GPU-hour")->check(number_at_least(0));
  plan_cmd->add_option("--tokens-per-s", plan_args.tokens_per_s, "Measured tokens/s per GPU")
      ->check(number_above(0));
  plan_cmd->add_option("--gpu-memory", plan_args.gpu_memory_gib, "GiB per GPU that batch.micro_tokens: auto may fill (default 79, an H100)")
      ->check(number_above(0));
  add_overrides(plan_cmd, plan_args.overrides);

  BenchArgs bench_args;
  CLI::App* bench_cmd = app.add_subcommand("bench", "Time training steps of a recipe on random data: tokens/s, TFLOP/s, "
                                           "peak memory, time by phase");
  bench_cmd->add_option("recipe", bench_args.recipe, "Recipe YAML file")->required()->check(CLI::ExistingFile);
  add_overrides(bench_cmd, bench_args.overrides);
  bench_cmd->add_option("--warmup", bench_args.warmup, "Untimed steps first")->check(CLI::Range(int64_t(0), int64_t(1) << 20));
  bench_cmd->add_option("--steps", bench_args.steps, "Timed steps")->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  bench_cmd->add_option("--profile-steps", bench_args.profile_steps, "Steps timed op by op for the breakdown (0 = none)")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 20));
  bench_cmd->add_flag("--json", bench_args.json, "Print one JSON object instead of the table");

  std::string check_recipe;
  std::vector<std::string> check_overrides;
  CLI::App* check_cmd = app.add_subcommand("check", "Validate a recipe without running it");
  check_cmd->add_option("recipe", check_recipe, "Recipe YAML file")->required()->check(CLI::ExistingFile);
  add_overrides(check_cmd, check_overrides);

  CLI::App* data_cmd = app.add_subcommand("data", "Prepare, generate and inspect token shards");
  data_cmd->require_subcommand(1);

  DataPrepareArgs prepare_args;
  CLI::App* prepare_cmd = data_cmd->add_subcommand("prepare", "Tokenize JSONL records into shards in a new directory");
  prepare_cmd->add_option("input", prepare_args.input, "JSONL file: {instruction, response} or {text}, condition optional")
      ->required()->check(CLI::ExistingFile);
  prepare_cmd->add_option("-o,--output", prepare_args.out_dir, "Output directory (shards + tokenizer)")->required();
  auto* tokenizer_opt = prepare_cmd->add_option("--tokenizer", prepare_args.tokenizer,
                                                "SentencePiece .model file, or a directory holding a saved tokenizer");
  prepare_cmd->add_option("--train-tokenizer", prepare_args.train_tokenizer,
                          "Train a SentencePiece model of this vocabulary size on the input instead")
      ->type_name("VOCAB")->check(CLI::Range(int64_t(8), int64_t(1) << 24))->excludes(tokenizer_opt);
  prepare_cmd->add_option("--shard-tokens", prepare_args.shard_tokens, "Tokens per shard at most")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 40));
  prepare_cmd->add_flag("--no-bos", prepare_args.no_bos, "Do not start samples with the bos token");
  prepare_cmd->add_flag("--no-eos", prepare_args.no_eos, "Do not end samples with the eos token");
  prepare_cmd->add_flag("--force", prepare_args.force, "Replace an output directory that is not empty");

  DataInspectArgs inspect_args;
  CLI::App* inspect_cmd = data_cmd->add_subcommand("inspect", "Counts, length histograms and decoded samples of shards");
  inspect_cmd->add_option("source", inspect_args.source, "A shard file or a directory of shards")->required();
  inspect_cmd->add_option("--tokenizer", inspect_args.tokenizer, "Tokenizer to decode with (default: the one beside the shards)");
  inspect_cmd->add_option("--samples", inspect_args.samples, "Decoded samples to show")->check(CLI::Range(int64_t(0), int64_t(1) << 20));

  DataSynthArgs synth_args;
  CLI::App* synth_cmd = data_cmd->add_subcommand("synth", "Generate a synthetic reasoning task as shards");
  synth_cmd->add_option("task", synth_args.task, "Task, e.g. reverse, sort, dedup")->required();
  synth_cmd->add_option("--n", synth_args.examples, "Training examples")->required()->check(CLI::Range(int64_t(1), int64_t(1) << 40));
  synth_cmd->add_option("--seed", synth_args.seed, "Seed (as runtime.seed of a recipe that trains on the task)")
      ->check(seed_value());
  synth_cmd->add_option("--eval", synth_args.eval_examples, "Held-out examples, written to OUT_DIR/eval")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 24));
  synth_cmd->add_option("-o,--output", synth_args.out_dir, "Output directory (shards + tokenizer)")->required();
  synth_cmd->add_option("--shard-tokens", synth_args.shard_tokens, "Tokens per shard at most")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 40));
  synth_cmd->add_flag("--force", synth_args.force, "Replace an output directory that is not empty");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    return usage_error(app, e, argc, argv);
  }
  if (*train_cmd) return train(train_args);
  if (*resume_cmd) return resume(resume_args);
  if (*export_cmd) return export_model(export_args);
  if (*generate_cmd) return generate(generate_args);
  if (*eval_cmd) return eval(eval_args);
  if (*plan_cmd) return plan(plan_args);
  if (*bench_cmd) return bench(bench_args);
  if (*check_cmd) return check(check_recipe, check_overrides);
  if (*prepare_cmd) return data_prepare(prepare_args);
  if (*inspect_cmd) return data_inspect(inspect_args);
  if (*synth_cmd) return data_synth(synth_args);
  return 2;
}
