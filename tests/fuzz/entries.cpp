#include "fuzz/entries.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "data/hdf5_check.h"
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

// HDF5 reads files, so the bytes go to one (per process) first, checksums resealed; opening checks
// the HDF5 structure, then the schema and spans.
void shard(std::string_view input) {
  static const fs::path path = fs::temp_directory_path() / ("ponder_fuzz_shard." + std::to_string(::getpid()) + ".h5");
  std::string bytes(input);
  reseal_hdf5_checksums(bytes);
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

uint64_t little_endian(const std::string& b, size_t at, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= uint64_t(uint8_t(b[at + i])) << (8 * i);
  return v;
}

// Writes the checksum of bytes [begin, end) at end; needs end + 4 <= size.
void store_checksum(std::string& b, size_t begin, size_t end) {
  const uint32_t sum = data::hdf5_checksum(reinterpret_cast<const uint8_t*>(b.data()) + begin, end - begin);
  for (int i = 0; i < 4; ++i) b[end + i] = char(sum >> (8 * i));
}

std::vector<size_t> find_all(const std::string& b, std::string_view needle) {
  std::vector<size_t> at;
  for (size_t p = b.find(needle); p != std::string::npos; p = b.find(needle, p + 1)) at.push_back(p);
  return at;
}

}  // namespace

void reseal_hdf5_checksums(std::string& b) {
  constexpr size_t kSuperblock = 48;  // version 2/3: 44 bytes, then their checksum
  if (b.size() >= kSuperblock && (b[8] == 2 || b[8] == 3)) store_checksum(b, 0, kSuperblock - 4);
  for (size_t at : find_all(b, "OCHK"))
    for (size_t p = 0; p + 20 <= b.size(); ++p) {
      if (b[p] != 0x10 || little_endian(b, p + 1, 2) != 16 || little_endian(b, p + 4, 8) != at) continue;
      const uint64_t length = little_endian(b, p + 12, 8);
      if (length >= 8 && length <= b.size() - at) store_checksum(b, at, at + length - 4);
    }
  for (size_t at : find_all(b, "OHDR")) {
    if (b.size() - at < 6) continue;
    const uint8_t flags = uint8_t(b[at + 5]);
    const int width = 1 << (flags & 3);
    const size_t prefix = 6 + ((flags & 0x20) ? 16 : 0) + ((flags & 0x10) ? 4 : 0) + width;
    if (b.size() - at < prefix) continue;
    const uint64_t chunk = little_endian(b, at + prefix - width, width);
    if (chunk <= b.size() - at - prefix && b.size() - at - prefix - chunk >= 4) store_checksum(b, at, at + prefix + chunk);
  }
}

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
