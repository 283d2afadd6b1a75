// ponder data prepare / inspect / synth.
#include <cstdio>
#include <filesystem>
#include <functional>

#include "cli/commands.h"
#include "cli/errors.h"
#include "data/inspect.h"
#include "data/prepare.h"
#include "data/shard.h"
#include "data/tasks/task.h"
#include "io/errors.h"
#include "train/task_source.h"

namespace ponder::cli {
namespace fs = std::filesystem;

namespace {

// An output directory built under DIR.partial and renamed to DIR once complete, so a killed run
// never leaves a half-written DIR (the next run clears a stale DIR.partial).
class StagedOutput {
 public:
  StagedOutput(const fs::path& target, bool force) : shown_(target) {
    target_ = fs::absolute(target).lexically_normal();
    if (!target_.has_filename()) target_ = target_.parent_path();  // "out/" -> "out"
    partial_ = target_;
    partial_ += ".partial";
    std::error_code ec;
    if (fs::exists(target_, ec)) {
      PONDER_CHECK(fs::is_directory(target_, ec), io::IoError, shown_.string(), ": exists and is not a directory");
      PONDER_CHECK(force || fs::is_empty(target_, ec), io::IoError, shown_.string(),
                   ": is not empty; pass --force to replace it");
    }
    fs::remove_all(partial_);
    fs::create_directories(partial_);
  }
  ~StagedOutput() {
    std::error_code ec;
    if (!committed_) fs::remove_all(partial_, ec);
  }
  StagedOutput(const StagedOutput&) = delete;
  StagedOutput& operator=(const StagedOutput&) = delete;

  const fs::path& path() const { return partial_; }

  // Replaces DIR (and whatever it held) with the finished directory.
  void commit() {
    fs::remove_all(target_);
    fs::rename(partial_, target_);
    committed_ = true;
  }

 private:
  fs::path shown_, target_, partial_;
  bool committed_ = false;
};

// Writes `count` task examples from `next` as shards into dir, with the tokenizer beside them.
int64_t write_examples(int64_t count, const std::function<data::TaskExample()>& next, const data::Tokenizer& tokenizer,
                       const fs::path& dir, int64_t shard_tokens) {
  data::ShardSetWriter shards(dir, {tokenizer.vocab_size(), tokenizer.id()}, shard_tokens);
  for (int64_t i = 0; i < count; ++i) shards.add(train::encode_example(tokenizer, next()));
  const int64_t tokens = shards.tokens();
  shards.close();
  tokenizer.save(dir);
  return tokens;
}

}  // namespace

int data_prepare(const DataPrepareArgs& args) {
  return guarded([&](Phase& phase) {
    PONDER_CHECK(args.tokenizer.empty() != (args.train_tokenizer == 0), ValueError,
                 "data prepare: give either --tokenizer MODEL or --train-tokenizer VOCAB");
    data::PrepareOptions options;
    options.tokenizer = args.tokenizer;
    options.vocab_size = args.train_tokenizer;
    options.shard_tokens = args.shard_tokens;
    options.add_bos = !args.no_bos;
    options.add_eos = !args.no_eos;
    StagedOutput out(args.out_dir, args.force);
    const data::PrepareSummary summary = data::prepare(args.input, out.path(), options);
    phase.running();
    out.commit();
    std::printf("%s\nwrote %s\n", summary.str().c_str(), args.out_dir.c_str());
    return 0;
  });
}

int data_inspect(const DataInspectArgs& args) {
  return guarded([&](Phase&) {
    std::unique_ptr<data::Tokenizer> tokenizer =
        args.tokenizer.empty() ? data::tokenizer_beside(args.source) : data::load_tokenizer(args.tokenizer);
    data::InspectOptions options;
    options.samples = args.samples;
    std::fputs(data::inspect(args.source, tokenizer.get(), options).c_str(), stdout);
    return 0;
  });
}

int data_synth(const DataSynthArgs& args) {
  return guarded([&](Phase& phase) {
    std::shared_ptr<const data::Task> task = data::make_task(args.task);
    StagedOutput out(args.out_dir, args.force);
    // The same examples a recipe with data.task = TASK, runtime.seed = S and data.task_eval_examples
    // = E trains on first: the training stream skips every held-out example.
    data::TaskStream stream(task, args.seed, args.eval_examples);
    auto next_train = [&] {
      data::TaskExample e = stream.peek_train();
      stream.pop_train();
      return e;
    };
    const data::CharTokenizer tokenizer;
    const int64_t tokens = write_examples(args.examples, next_train, tokenizer, out.path(), args.shard_tokens);
    if (args.eval_examples > 0) {
      fs::create_directory(out.path() / "eval");
      size_t next = 0;
      write_examples(args.eval_examples, [&] { return stream.test()[next++]; }, tokenizer, out.path() / "eval",
                     args.shard_tokens);
    }
    phase.running();
    out.commit();
    std::printf("wrote %lld %s examples (%lld tokens) to %s", static_cast<long long>(args.examples),
                task->name().c_str(), static_cast<long long>(tokens), args.out_dir.c_str());
    if (args.eval_examples > 0)
      std::printf(" and %lld held-out examples to %s", static_cast<long long>(args.eval_examples),
                  (fs::path(args.out_dir) / "eval").c_str());
    std::printf("\n");
    return 0;
  });
}

}  // namespace ponder::cli
