// The fuzzed readers of untrusted input, one entry per target: each takes any bytes and either
// accepts them or throws a ponder::Error (the one-line errors the CLI prints). Anything else
// escaping (another exception, a crash, a sanitizer report) is a finding. The libFuzzer targets
// (fuzz_main.cpp) and the corpus regression test (corpus_test.cpp) call the same entries.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ponder::fuzz {

struct Target {
  const char* name;  // also the folder of its seed corpus: tests/fuzz/corpus/<name>/
  void (*run)(std::string_view bytes);
};

const std::vector<Target>& targets();
// The target of that name (nullptr when there is none).
const Target* find_target(std::string_view name);

// Recomputes the checksums of an HDF5 file's superblock and object header chunks (OHDR found by
// signature and its prefix, OCHK by the continuation message that points to it) after bytes in
// them changed. The shard target reseals every input, so mutations reach the structure checks
// behind the checksums: a checksum is no seal, and a hostile file can carry right ones.
void reseal_hdf5_checksums(std::string& bytes);

}  // namespace ponder::fuzz
