// libFuzzer's entry point for one target, chosen at compile time (PONDER_FUZZ_TARGET).
#include <cstdint>
#include <cstdlib>

#include "fuzz/entries.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const ponder::fuzz::Target* target = ponder::fuzz::find_target(PONDER_FUZZ_TARGET);
  if (!target) std::abort();  // a build mistake, not a finding
  target->run({reinterpret_cast<const char*>(data), size});
  return 0;
}
