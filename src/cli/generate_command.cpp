// ponder generate: text from an exported or training model, with KV caches.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/device_option.h"
#include "cli/errors.h"
#include "io/errors.h"
#include "models/generate.h"
#include "train/inference.h"

namespace ponder::cli {
namespace {
using nlohmann::json;

// The prompts of a JSONL file, one {"prompt": TEXT} object per line (blank lines skipped).
std::vector<std::string> read_prompts(const std::string& path) {
  std::ifstream in(path);
  PONDER_CHECK(in.good(), io::IoError, path, ": cannot open for reading");
  std::vector<std::string> prompts;
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(number);
    const json record = json::parse(line, nullptr, /*allow_exceptions=*/false);
    PONDER_CHECK(!record.is_discarded(), io::FormatError, where, ": not valid JSON");
    PONDER_CHECK(record.is_object() && record.size() == 1 && record.contains("prompt") && record["prompt"].is_string(),
                 io::FormatError, where, ": expected {\"prompt\": TEXT}");
    prompts.push_back(record["prompt"].get<std::string>());
  }
  PONDER_CHECK(!prompts.empty(), io::FormatError, path, ": holds no prompts");
  return prompts;
}

// The longest prefix of `text` that does not end inside a UTF-8 character (a character split
// over several tokens is printed once whole).
size_t complete_utf8_length(const std::string& text) {
  size_t start = text.size();
  while (start > 0 && (static_cast<unsigned char>(text[start - 1]) & 0xC0) == 0x80) --start;  // continuation bytes
  if (start == 0) return text.size();
  const unsigned char lead = static_cast<unsigned char>(text[start - 1]);
  const size_t needed = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
  return text.size() - (start - 1) >= needed ? text.size() : start - 1;
}

// Prints a completion as its tokens arrive: the text decoded so far, less what is already out.
class TextStream {
 public:
  explicit TextStream(const data::Tokenizer& tokenizer) : tokenizer_(tokenizer) {}
  void add(int32_t token) {
    ids_.push_back(token);
    const std::string text = tokenizer_.decode(ids_);
    print_beyond_printed(text.substr(0, complete_utf8_length(text)));
  }
  void finish() {
    print_beyond_printed(tokenizer_.decode(ids_));
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }

 private:
  // Decoding more pieces leaves earlier text as it was, so `text` extends what was printed.
  void print_beyond_printed(const std::string& text) {
    if (text.size() <= printed_.size() || text.compare(0, printed_.size(), printed_) != 0) return;
    std::fputs(text.c_str() + printed_.size(), stdout);
    std::fflush(stdout);
    printed_ = text;
  }

  const data::Tokenizer& tokenizer_;
  std::vector<int32_t> ids_;
  std::string printed_;
};

models::GenerateOptions generate_options(const GenerateArgs& a, const train::InferenceModel& m, Device device,
                                         int64_t prompt_tokens) {
  models::GenerateOptions o;
  o.max_new_tokens = std::min(a.max_new_tokens, m.context - prompt_tokens);  // positions stay within training's
  o.eos = m.tokenizer->eos();
  o.prompt_mask = m.prompt_mask;
  o.sampling = {.temperature = a.temperature, .top_k = a.top_k, .top_p = a.top_p, .seed = a.seed};
  o.device = device;
  o.vocab = m.tokenizer->vocab_size();
  return o;
}

// One line on stderr, so stdout holds only the completion.
void report(const models::Generation& g, bool at_context, double seconds) {
  const char* why = g.stopped_at_eos ? "the end of text" : at_context ? "the model's context" : "--max-new-tokens";
  std::fprintf(stderr, "ponder: %zu tokens in %.2f s (%.1f tokens/s), stopped at %s\n", g.tokens.size(), seconds,
               seconds > 0 ? double(g.tokens.size()) / seconds : 0.0, why);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int generate(const GenerateArgs& args) {
  return guarded([&](Phase& phase) {
    PONDER_CHECK(args.prompt.has_value() != args.file.has_value(), ValueError,
                 "generate: give one of --prompt TEXT or --file JSONL");
    models::validate(models::SamplingOptions{.temperature = args.temperature, .top_k = args.top_k, .top_p = args.top_p});
    const Device device = parse_device(args.device);
    const std::vector<std::string> texts = args.prompt ? std::vector<std::string>{*args.prompt} : read_prompts(*args.file);
    const train::InferenceModel m = train::load_for_inference(args.source, {.device = device, .ema = args.ema});
    std::vector<std::vector<int32_t>> prompts;
    for (size_t i = 0; i < texts.size(); ++i) {
      try {
        prompts.push_back(train::encode_prompt(m, texts[i], args.max_new_tokens, args.truncate));
      } catch (const ValueError& e) {
        if (!args.file) throw;
        fail<ValueError>(*args.file, ": prompt ", i + 1, ": ", e.what());
      }
    }
    phase.running();
    const auto start = std::chrono::steady_clock::now();
    int64_t tokens = 0;
    for (size_t i = 0; i < prompts.size(); ++i) {
      const models::GenerateOptions o = generate_options(args, m, device, int64_t(prompts[i].size()));
      if (args.prompt) {
        TextStream stream(*m.tokenizer);
        const models::Generation g = models::generate(*m.model, prompts[i], o, [&](int32_t t) { stream.add(t); });
        stream.finish();
        report(g, o.max_new_tokens < args.max_new_tokens, seconds_since(start));
        continue;
      }
      const models::Generation g = models::generate(*m.model, prompts[i], o);
      json out = {{"prompt", texts[i]}, {"completion", m.tokenizer->decode(g.tokens)}};
      if (args.ids) {
        out["prompt_ids"] = prompts[i];
        out["completion_ids"] = g.tokens;
      }
      std::printf("%s\n", out.dump(-1, ' ', false, json::error_handler_t::replace).c_str());
      std::fflush(stdout);
      tokens += int64_t(g.tokens.size());
    }
    if (args.file) {
      std::fprintf(stderr, "ponder: %zu completions, %lld tokens in %.2f s\n", prompts.size(),
                   static_cast<long long>(tokens), seconds_since(start));
    }
    return 0;
  });
}

}  // namespace ponder::cli
