// Token shards: one HDF5 file per shard (DESIGN.md §5).
//
// Layout (format_version 1):
//   dataset tokens                                   int32 [N]   every token of every sample
//   datasets inst_start, inst_len, resp_start, resp_len  int64 [S]   one entry per sample
//   attribute vocab_size                             int64       every token is in [0, vocab_size)
//   attribute tokenizer_id                           string      Tokenizer::id() of the tokenizer used
//                                                                (fixed-length; variable-length is refused)
//   attribute format_version                         int64       1
// A sample's instruction is tokens[inst_start, inst_start + inst_len) (possibly empty) and its
// response tokens[resp_start, resp_start + resp_len) (never empty; instruction + response hold at
// least two tokens, so the sample predicts at least one). A plain-text sample has an empty
// instruction. The writer stores each sample's instruction and response back to back.
//
// The file is written in libhdf5's latest format with contiguous datasets, and only that is read:
// opening a shard first checks its HDF5 structure with bounded reads of its own
// (check_hdf5_structure), since libhdf5 1.10 trusts lengths in the file.
// Shards are read by many ranks and come from anywhere, so opening one validates the whole schema
// and every span before anything is used; each problem is one io::FormatError line naming the file
// and the dataset or attribute. HDF5 itself is not thread-safe in its serial build: every HDF5
// call in ponder goes through one process-wide lock, so shards may be read from loader threads.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "data/packing.h"

namespace ponder::data {

constexpr int64_t kShardFormatVersion = 1;

// Where a sample's tokens lie in `tokens`.
struct SampleSpan {
  int64_t inst_start = 0, inst_len = 0, resp_start = 0, resp_len = 0;
  // Tokens the sample occupies in a packed row (see Sample::packed_length).
  int64_t packed_length() const { return inst_len + resp_len - 1; }
};

struct ShardMeta {
  int64_t vocab_size = 0;
  std::string tokenizer_id;
};

class ShardWriter {
 public:
  // Creates a temporary file next to `path`; the shard appears under `path` only on close().
  ShardWriter(std::filesystem::path path, ShardMeta meta);
  // Without close(), removes the temporary and leaves any file at `path` untouched.
  ~ShardWriter();
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  // Buffers a sample (ValueError for ids outside [0, vocab_size), an empty response, or fewer
  // than two tokens in all). Samples stay in memory until close(): each dataset is then written
  // whole and contiguous, which keeps the file simple to check before reading (hdf5_check.h).
  // A shard is bounded by ShardSetWriter's shard_tokens (4 bytes a token, 32 bytes a sample).
  void add(const Sample& sample);
  // Writes the datasets, fsyncs and renames the shard into place.
  void close();

  int64_t samples() const { return samples_; }
  int64_t tokens() const { return tokens_; }

 private:
  struct Handle;
  std::filesystem::path path_, temp_;
  ShardMeta meta_;
  std::unique_ptr<Handle> h5_;
  std::vector<int32_t> pending_tokens_;
  std::vector<int64_t> pending_spans_[4];  // inst_start, inst_len, resp_start, resp_len
  int64_t samples_ = 0, tokens_ = 0;
};

// Numbered shards dir/shard_000000.h5, shard_000001.h5, ...: a shard is closed before a sample
// would take it past shard_tokens (a longer sample gets a shard of its own).
class ShardSetWriter {
 public:
  ShardSetWriter(std::filesystem::path dir, ShardMeta meta, int64_t shard_tokens);
  // Without close(), removes every shard written so far.
  ~ShardSetWriter();
  ShardSetWriter(const ShardSetWriter&) = delete;
  ShardSetWriter& operator=(const ShardSetWriter&) = delete;

  void add(const Sample& sample);
  // Closes the last shard and returns the paths of all of them (none when no sample was added).
  std::vector<std::filesystem::path> close();

  int64_t tokens() const { return tokens_; }

 private:
  void close_open_shard();

  std::filesystem::path dir_;
  ShardMeta meta_;
  int64_t shard_tokens_;
  std::unique_ptr<ShardWriter> open_;
  std::filesystem::path open_path_;
  std::vector<std::filesystem::path> closed_;
  int64_t tokens_ = 0;
  bool done_ = false;
};

// How much of `tokens` opening a shard reads. Spans are always checked; token ids are checked
// again whenever a sample is read, so `on_read` only defers finding a bad id to its first use.
enum class TokenCheck { scan, on_read };

class Shard {
 public:
  explicit Shard(std::filesystem::path path, TokenCheck check = TokenCheck::scan);
  ~Shard();
  Shard(Shard&&) noexcept;
  Shard& operator=(Shard&&) noexcept;

  const std::filesystem::path& path() const { return path_; }
  const ShardMeta& meta() const { return meta_; }
  int64_t size() const { return static_cast<int64_t>(spans_.size()); }
  int64_t num_tokens() const { return num_tokens_; }
  const SampleSpan& span(int64_t i) const;
  // Reads sample i (ValueError when i is out of range, FormatError for an id >= vocab_size).
  Sample get(int64_t i) const;

 private:
  struct Handle;
  std::filesystem::path path_;
  ShardMeta meta_;
  int64_t num_tokens_ = 0;
  std::vector<SampleSpan> spans_;
  std::unique_ptr<Handle> h5_;
};

}  // namespace ponder::data
