// Sources of samples for the batch loader: shards on disk (Dataset) or samples in memory
// (synthetic tasks, tests).
#pragma once

#include <filesystem>
#include <vector>

#include "data/shard.h"

namespace ponder::data {

// Samples indexed 0..size()-1. get() may be called from a loader's background thread.
class SampleSource {
 public:
  virtual ~SampleSource() = default;
  virtual int64_t size() const = 0;
  virtual Sample get(int64_t i) const = 0;
  // Tokens sample i occupies in a packed row (Sample::packed_length), for every sample in order.
  virtual std::vector<int64_t> packed_lengths() const = 0;
};

class InMemorySource : public SampleSource {
 public:
  // Every sample needs a response and at least two tokens (ValueError naming the sample).
  explicit InMemorySource(std::vector<Sample> samples);
  int64_t size() const override { return static_cast<int64_t>(samples_.size()); }
  Sample get(int64_t i) const override;
  std::vector<int64_t> packed_lengths() const override;

 private:
  std::vector<Sample> samples_;
};

// The samples of one or more shards, in shard order.
class Dataset : public SampleSource {
 public:
  // Each source is a shard file or a directory whose *.h5 files (not recursive) are the shards;
  // shards are ordered by source, then by file name. Every shard must agree on vocab_size and
  // tokenizer_id (FormatError naming both files otherwise); an empty source list, or a directory
  // without shards, is an IoError.
  explicit Dataset(const std::vector<std::filesystem::path>& sources, TokenCheck check = TokenCheck::scan);

  int64_t size() const override { return first_sample_.back(); }
  int64_t num_tokens() const { return num_tokens_; }
  int64_t vocab_size() const { return shards_.front().meta().vocab_size; }
  const std::string& tokenizer_id() const { return shards_.front().meta().tokenizer_id; }
  const std::vector<Shard>& shards() const { return shards_; }

  Sample get(int64_t i) const override;
  // Known from the spans, without reading tokens.
  std::vector<int64_t> packed_lengths() const override;

 private:
  // The shard holding sample i and its index there.
  std::pair<const Shard*, int64_t> locate(int64_t i) const;

  std::vector<Shard> shards_;
  std::vector<int64_t> first_sample_{0};  // shard s holds samples [first_sample_[s], first_sample_[s + 1])
  int64_t num_tokens_ = 0;
};

}  // namespace ponder::data
