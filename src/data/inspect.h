// A printable report on shards, for `ponder data inspect` and for eyeballing prepared data.
#pragma once

#include <filesystem>
#include <string>

#include "data/tokenizer.h"

namespace ponder::data {

struct InspectOptions {
  int64_t samples = 3;       // decoded samples shown (the first ones), with a tokenizer
  int64_t max_chars = 240;   // per decoded instruction or response
  int64_t bar_width = 40;    // histogram bars
};

// `source` is a shard file or a directory of shards (as data::Dataset reads it). The report: counts
// (shards, samples, instruction/plain-text split, tokens), vocab size, tokenizer id, instruction and
// response length histograms (power-of-two bins) and, given the tokenizer the shards were made
// with, a few decoded samples with special ids shown as <bos>, <inst>, ... Every shard is fully
// validated first (io::FormatError); a tokenizer with another id is a ValueError.
std::string inspect(const std::filesystem::path& source, const Tokenizer* tokenizer = nullptr,
                    const InspectOptions& options = {});

}  // namespace ponder::data
