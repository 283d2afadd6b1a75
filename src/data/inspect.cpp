#include "data/inspect.h"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <sstream>

#include "data/dataset.h"

namespace ponder::data {
namespace {

// Bin 0 holds length 0, bin b >= 1 holds lengths [2^(b-1), 2^b).
int bin_of(int64_t length) { return length == 0 ? 0 : std::bit_width(static_cast<uint64_t>(length)); }

std::string bin_label(int b) {
  if (b <= 1) return std::to_string(b);
  return std::to_string(int64_t(1) << (b - 1)) + "-" + std::to_string((int64_t(1) << b) - 1);
}

void histogram(std::ostream& os, const char* title, const std::vector<int64_t>& lengths, int64_t bar_width) {
  if (lengths.empty()) return;
  bar_width = std::max<int64_t>(1, bar_width);
  const auto [lo, hi] = std::minmax_element(lengths.begin(), lengths.end());
  double sum = 0;
  for (int64_t n : lengths) sum += static_cast<double>(n);
  char line[160];
  std::snprintf(line, sizeof line, "%s lengths (tokens): min %lld, mean %.1f, max %lld\n", title,
                static_cast<long long>(*lo), sum / static_cast<double>(lengths.size()), static_cast<long long>(*hi));
  os << line;
  std::vector<int64_t> counts(bin_of(*hi) + 1, 0);
  for (int64_t n : lengths) ++counts[bin_of(n)];
  const int64_t most = *std::max_element(counts.begin(), counts.end());
  for (int b = bin_of(*lo); b < static_cast<int>(counts.size()); ++b) {
    // Scaled to the fullest bin; a non-empty bin always shows at least one mark.
    const int64_t marks = counts[b] == 0 ? 0 : std::max<int64_t>(1, counts[b] * bar_width / most);
    std::snprintf(line, sizeof line, "  %13s | ", bin_label(b).c_str());
    os << line << std::string(marks, '#') << std::string(bar_width - marks + 1, ' ') << counts[b] << "\n";
  }
}

// Decoded text with special ids spelled out and control characters escaped, cut at max_chars.
std::string render(const std::vector<int32_t>& ids, const Tokenizer& tok, int64_t max_chars) {
  const std::pair<int32_t, const char*> names[] = {
      {tok.bos(), "<bos>"}, {tok.eos(), "<eos>"}, {tok.inst(), "<inst>"}, {tok.resp(), "<resp>"}, {tok.pad(), "<pad>"}};
  std::string text;
  std::vector<int32_t> run;
  auto flush = [&] {
    text += tok.decode(run);
    run.clear();
  };
  for (int32_t id : ids) {
    const auto* special = std::find_if(std::begin(names), std::end(names), [&](const auto& n) { return n.first == id; });
    if (special == std::end(names)) {
      run.push_back(id);
      continue;
    }
    flush();
    text += special->second;
  }
  flush();
  if (text.empty()) return "(empty)";
  std::string shown;
  for (unsigned char c : text) {
    if (static_cast<int64_t>(shown.size()) >= max_chars) return shown + "...";
    if (c == '\n') shown += "\\n";
    else if (c == '\t') shown += "\\t";
    else if (c < 32 || c == 127) shown += "?";
    else shown += static_cast<char>(c);
  }
  return shown;
}

}  // namespace

std::string inspect(const std::filesystem::path& source, const Tokenizer* tokenizer, const InspectOptions& options) {
  const Dataset dataset({source});
  if (tokenizer)
    PONDER_CHECK(tokenizer->id() == dataset.tokenizer_id(), ValueError, "inspect: ", source.string(),
                 " was made with tokenizer ", dataset.tokenizer_id(), ", not the given ", tokenizer->id());
  std::vector<int64_t> inst_lengths, resp_lengths;
  int64_t plain = 0;
  for (const Shard& shard : dataset.shards()) {
    for (int64_t i = 0; i < shard.size(); ++i) {
      inst_lengths.push_back(shard.span(i).inst_len);
      resp_lengths.push_back(shard.span(i).resp_len);
      plain += shard.span(i).inst_len == 0;
    }
  }
  std::ostringstream os;
  os << "source       " << source.string() << "\n"
     << "shards       " << dataset.shards().size() << "\n"
     << "samples      " << dataset.size() << " (" << dataset.size() - plain << " instruction, " << plain
     << " plain text)\n"
     << "tokens       " << dataset.num_tokens() << "\n"
     << "vocab size   " << dataset.vocab_size() << "\n"
     << "tokenizer    " << dataset.tokenizer_id() << "\n";
  histogram(os, "instruction", inst_lengths, options.bar_width);
  histogram(os, "response", resp_lengths, options.bar_width);
  if (!tokenizer) return os.str();
  for (int64_t i = 0; i < std::min(options.samples, dataset.size()); ++i) {
    const Sample s = dataset.get(i);
    os << "sample " << i << "\n"
       << "  instruction: " << render(s.instruction, *tokenizer, options.max_chars) << "\n"
       << "  response:    " << render(s.response, *tokenizer, options.max_chars) << "\n";
  }
  return os.str();
}

}  // namespace ponder::data
