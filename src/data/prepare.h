// From JSONL text to token shards.
//
// Input: one JSON object per line (blank lines are skipped), either
//   {"instruction": "...", "response": "...", "condition": "..."}   (condition optional)
// or
//   {"text": "...", "condition": "..."}                              (condition optional)
// All values are strings; any other field, a missing field, a wrong type or bad JSON is an
// io::FormatError "<file>:<line>: ...". A condition is 1 to 64 letters, digits or "_-.:/".
//
// Sample layout (the tokens the shards store; [x] is a special id, cond the condition's tokens,
// Tokenizer::encode_condition, empty without a condition):
//   instruction record:  instruction = [bos] cond [inst] encode(instruction) [resp]
//                        response    = encode(response) [eos]
//   text record:         instruction = (empty)
//                        response    = [bos] cond encode(text) [eos]
// [bos] and [eos] are left out when add_bos / add_eos are off. So the model reads the instruction
// (bidirectionally under PrefixLM) and learns to produce the response and then stop.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "data/packing.h"
#include "data/tokenizer.h"

namespace ponder::data {

struct Record {
  std::optional<std::string> instruction;  // none: a plain-text record, its text is `response`
  std::string response;
  std::optional<std::string> condition;
};

// Parses one line: nullopt for a blank line, else the record. Any other input, whatever its
// bytes, is an io::FormatError "<where>: <what is wrong>".
std::optional<Record> parse_record(std::string_view line, const std::string& where);

// The sample of a record in the layout above (ValueError from the tokenizer for text it cannot encode).
Sample tokenize_record(const Record& record, const Tokenizer& tokenizer, bool add_bos = true, bool add_eos = true);

struct PrepareOptions {
  std::filesystem::path tokenizer;  // a .model file or a saved tokenizer directory; empty: train one
  int64_t vocab_size = 0;           // of the SentencePiece model trained when `tokenizer` is empty
  int64_t shard_tokens = int64_t(64) << 20;  // a shard is closed before it would exceed this
  bool add_bos = true, add_eos = true;
};

struct PrepareSummary {
  int64_t lines = 0;  // lines read, blank ones included
  int64_t instruction_samples = 0, text_samples = 0;
  int64_t tokens = 0;
  std::vector<std::filesystem::path> shards;
  int64_t vocab_size = 0;
  std::string tokenizer_id;
  std::string str() const;  // one line for the CLI
};

// Tokenizes `jsonl` into out_dir/shard_000000.h5, shard_000001.h5, ... and writes the tokenizer
// files there (Tokenizer::save; a trained model also leaves tokenizer.vocab). out_dir is created
// if missing and must otherwise be empty (io::IoError); on any failure the files written so far
// are removed. A trained tokenizer learns every distinct condition as one symbol.
PrepareSummary prepare(const std::filesystem::path& jsonl, const std::filesystem::path& out_dir,
                       const PrepareOptions& options);
// The same with a given tokenizer (options.tokenizer and options.vocab_size are not used).
PrepareSummary prepare(const std::filesystem::path& jsonl, const std::filesystem::path& out_dir,
                       const Tokenizer& tokenizer, const PrepareOptions& options);

}  // namespace ponder::data
