// The fuzzed readers of untrusted input, one entry per target: each takes any bytes and either
// accepts them or throws a ponder::Error (the one-line errors the CLI prints). Anything else
// escaping (another exception, a crash, a sanitizer report) is a finding. The libFuzzer targets
// (fuzz_main.cpp) and the corpus regression test (corpus_test.cpp) call the same entries.
#pragma once

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

}  // namespace ponder::fuzz
