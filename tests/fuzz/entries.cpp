#include "fuzz/entries.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "data/prepare.h"
#include "data/shard.h"
#include "io/recipe.h"
#include "io/safetensors.h"
#include "tensor/error.h"
#include "train/checkpoint.h"

namespace ponder::fuzz {
namespace fs = std::filesystem;
namespace {

// Rejections are the readers' normal answer to bad bytes.
template <class F>
void expecting_rejection(F&& f) {
  try {
    f();
  } catch (const Error&) {
  }
}

void safetensors(std::string_view bytes) {
  expecting_rejection([&] { io::parse_safetensors(std::string(bytes), "fuzz.safetensors"); });
}

void recipe(std::string_view bytes) {
  expecting_rejection([&] { io::parse_recipe(std::string(bytes), "fuzz.yaml"); });
}

void trainer_state(std::string_view bytes) {
  expecting_rejection([&] { train::parse_trainer_state(std::string(bytes), "trainer.yaml"); });
}

// HDF5 reads files, so the bytes go to one (per process) first; opening validates schema and spans.
void shard(std::string_view bytes) {
  static const fs::path path = fs::temp_directory_path() / ("ponder_fuzz_shard." + std::to_string(::getpid()) + ".h5");
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), std::streamsize(bytes.size()));
  expecting_rejection([&] {
    data::Shard s(path);
    for (int64_t i = 0; i < s.size(); ++i) s.get(i);
  });
}

// Each line as `ponder data prepare` reads it, then tokenized by a character tokenizer.
void jsonl(std::string_view bytes) {
  static const data::CharTokenizer tokenizer;
  int line_no = 0;
  while (!bytes.empty()) {
    const size_t end = std::min(bytes.find('\n'), bytes.size());
    const std::string_view line = bytes.substr(0, end);
    bytes.remove_prefix(std::min(end + 1, bytes.size()));
    expecting_rejection([&] {
      auto record = data::parse_record(line, "fuzz.jsonl:" + std::to_string(++line_no));
      if (record) data::tokenize_record(*record, tokenizer);
    });
  }
}

}  // namespace

const std::vector<Target>& targets() {
  static const std::vector<Target> all = {{"safetensors", safetensors},
                                          {"recipe", recipe},
                                          {"shard", shard},
                                          {"jsonl", jsonl},
                                          {"trainer_state", trainer_state}};
  return all;
}

const Target* find_target(std::string_view name) {
  for (const Target& t : targets())
    if (name == t.name) return &t;
  return nullptr;
}

}  // namespace ponder::fuzz
