// ponder eval: loss, perplexity and exact match of a model on held-out pairs, at each test-time depth.
#include <algorithm>
#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/device_option.h"
#include "cli/errors.h"
#include "io/atomic_file.h"
#include "io/errors.h"
#include "train/model_eval.h"

namespace ponder::cli {

int eval(const EvalArgs& args) {
  return guarded([&](Phase& phase) {
    const Device device = parse_device(args.device);
    PONDER_CHECK(args.json_out.empty() || !std::filesystem::exists(args.json_out), io::IoError, "--json ", args.json_out,
                 ": already exists; choose another file");
    train::InferenceModel m = train::load_for_inference(args.source, {.device = device, .ema = args.ema});
    const train::EvalSet set = train::read_eval_set(args.data, *m.tokenizer, args.task, args.max_samples, m.context);
    phase.running();
    const std::vector<train::DepthScore> scores = train::evaluate_depths(m, set, args.depths, device);
    std::printf("%s: %zu samples of %s\n%s", m.weights.string().c_str(), set.pairs.size(), args.data.c_str(),
                train::depth_table(scores).c_str());
    if (args.examples > 0) {
      // At the trained depth (compute 1), or the first of a sweep without it.
      auto shown = std::find_if(scores.begin(), scores.end(), [](const auto& s) { return s.compute == 1.0; });
      if (shown == scores.end()) shown = scores.begin();
      const std::string lines = train::answer_lines(*shown, size_t(args.examples));
      if (!lines.empty()) std::printf("examples at depth %s:\n%s", shown->depth.c_str(), lines.c_str());
    }
    if (!args.json_out.empty()) {
      const nlohmann::json out = {{"model", m.weights.string()}, {"family", m.model->family()}, {"data", args.data},
                                  {"task", args.task}, {"samples", set.pairs.size()},
                                  {"depths", train::depth_json(scores)}};
      io::AtomicFile file(args.json_out);
      const std::string text = out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
      file.write(text.data(), text.size());
      file.commit();
    }
    return 0;
  });
}

}  // namespace ponder::cli
