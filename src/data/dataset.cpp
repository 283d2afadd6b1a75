#include "data/dataset.h"

#include <algorithm>

#include "io/errors.h"

namespace ponder::data {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> shard_files(const std::vector<fs::path>& sources) {
  PONDER_CHECK(!sources.empty(), io::IoError, "Dataset: no shard files or directories given");
  std::vector<fs::path> files;
  for (const fs::path& source : sources) {
    std::error_code ec;
    if (!fs::is_directory(source, ec)) {
      files.push_back(source);  // Shard reports a missing or unreadable file
      continue;
    }
    std::vector<fs::path> found;
    for (const fs::directory_entry& e : fs::directory_iterator(source, ec))
      if (e.path().extension() == ".h5" && e.is_regular_file(ec)) found.push_back(e.path());
    PONDER_CHECK(!ec, io::IoError, source.string(), ": cannot list the directory (", ec.message(), ")");
    PONDER_CHECK(!found.empty(), io::IoError, source.string(), ": the directory holds no *.h5 shards");
    std::sort(found.begin(), found.end());
    files.insert(files.end(), found.begin(), found.end());
  }
  return files;
}

}  // namespace

InMemorySource::InMemorySource(std::vector<Sample> samples) : samples_(std::move(samples)) {
  for (size_t i = 0; i < samples_.size(); ++i)
    PONDER_CHECK(!samples_[i].response.empty() && samples_[i].packed_length() >= 1, ValueError, "InMemorySource: sample ",
                 i, " needs a non-empty response and at least 2 tokens");
}

Sample InMemorySource::get(int64_t i) const {
  PONDER_CHECK(i >= 0 && i < size(), ValueError, "InMemorySource: sample ", i, " is out of range (", size(),
               " samples)");
  return samples_[i];
}

std::vector<int64_t> InMemorySource::packed_lengths() const {
  std::vector<int64_t> lengths;
  lengths.reserve(samples_.size());
  for (const Sample& s : samples_) lengths.push_back(s.packed_length());
  return lengths;
}

Dataset::Dataset(const std::vector<fs::path>& sources, TokenCheck check) {
  for (const fs::path& file : shard_files(sources)) {
    Shard shard(file, check);
    if (!shards_.empty()) {
      const Shard& first = shards_.front();
      PONDER_CHECK(shard.meta().vocab_size == first.meta().vocab_size, io::FormatError, file.string(),
                   ": vocab_size ", shard.meta().vocab_size, " differs from ", first.meta().vocab_size, " in ",
                   first.path().string());
      PONDER_CHECK(shard.meta().tokenizer_id == first.meta().tokenizer_id, io::FormatError, file.string(),
                   ": tokenizer_id \"", shard.meta().tokenizer_id, "\" differs from \"", first.meta().tokenizer_id,
                   "\" in ", first.path().string());
    }
    num_tokens_ += shard.num_tokens();
    first_sample_.push_back(first_sample_.back() + shard.size());
    shards_.push_back(std::move(shard));
  }
}

std::pair<const Shard*, int64_t> Dataset::locate(int64_t i) const {
  PONDER_CHECK(i >= 0 && i < size(), ValueError, "Dataset: sample ", i, " is out of range (", size(), " samples)");
  // The last shard whose first sample is <= i (empty shards share a start and are skipped).
  const auto after = std::upper_bound(first_sample_.begin(), first_sample_.end(), i);
  const auto s = static_cast<size_t>(after - first_sample_.begin()) - 1;
  return {&shards_[s], i - first_sample_[s]};
}

Sample Dataset::get(int64_t i) const {
  auto [shard, index] = locate(i);
  return shard->get(index);
}

std::vector<int64_t> Dataset::packed_lengths() const {
  std::vector<int64_t> lengths;
  lengths.reserve(size());
  for (const Shard& shard : shards_)
    for (int64_t i = 0; i < shard.size(); ++i) lengths.push_back(shard.span(i).packed_length());
  return lengths;
}

}  // namespace ponder::data
