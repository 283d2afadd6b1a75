// ponder export / plan / bench / check.
#include <cstdio>

#include "cli/commands.h"
#include "cli/errors.h"
#include "train/benchmark.h"
#include "train/export.h"
#include "train/plan.h"
#include "train/session.h"

namespace ponder::cli {

int export_model(const ExportArgs& args) {
  return guarded([&](Phase&) {
    train::ExportOptions o;
    o.ema = args.ema;
    o.dtype = parse_dtype(args.dtype);
    train::ExportResult r = train::export_model(args.source, args.out_dir, o);
    std::printf("exported %lld parameters from %s to %s (%d shard%s, %s)\n", static_cast<long long>(r.parameters),
                r.checkpoint.string().c_str(), args.out_dir.c_str(), r.shards, r.shards == 1 ? "" : "s", args.dtype.c_str());
    if (r.tokenizer_id.empty())
      std::fprintf(stderr, "ponder: note: the run saved no tokenizer, so the export has none\n");
    return 0;
  });
}

int plan(const PlanArgs& args) {
  return guarded([&](Phase&) {
    io::Recipe recipe = io::load_recipe(args.recipe, args.overrides, args.gpus);
    train::PlanOptions o;
    o.gpus = args.gpus;
    o.tokens_per_s_per_gpu = args.tokens_per_s;
    o.gpu_hour_price = args.gpu_hour_price;
    std::string chosen;
    if (recipe.batch.micro_auto() || recipe.runtime.recompute_auto()) {
      const train::MemoryChoice choice = train::choose_by_memory(recipe, o, args.gpu_memory_gib * double(1 << 30));
      chosen = "chosen       " + train::describe(choice, recipe) + " (--gpu-memory)\n";
      train::apply(choice, recipe);
    }
    std::fputs((train::format_plan(recipe, o, train::make_plan(recipe, o)) + chosen).c_str(), stdout);
    return 0;
  });
}

int bench(const BenchArgs& args) {
  return guarded([&](Phase& phase) {
    io::Recipe recipe = io::load_recipe(args.recipe, args.overrides);
    phase.running();
    const train::BenchOptions options{.warmup_steps = args.warmup, .steps = args.steps, .profile_steps = args.profile_steps};
    const train::BenchResult result = train::benchmark_training(recipe, options);
    const std::string report = args.json ? train::bench_json(result, options).dump(2) + "\n" : train::format_bench(result, options);
    std::fputs(report.c_str(), stdout);
    return 0;
  });
}

int check(const std::string& recipe_path, const std::vector<std::string>& overrides) {
  return guarded([&](Phase&) {
    io::Recipe recipe = io::load_recipe(recipe_path, overrides);
    train::open_data(recipe);  // a bad task, missing shards or a too-small vocabulary fail here, not in train
    train::ModelCost cost = train::model_cost(recipe.model, recipe.data.seq_len);
    std::printf("%s: ok (%s, %lld parameters, %lld steps of %lld tokens)\n", recipe_path.c_str(), recipe.family.c_str(),
                static_cast<long long>(cost.parameters), static_cast<long long>(recipe.train.steps),
                static_cast<long long>(recipe.batch.global_tokens));
    return 0;
  });
}

}  // namespace ponder::cli
