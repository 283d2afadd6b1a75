// A random stream: a seed plus the next unused Philox block. Each random fill takes a fresh
// range of blocks, so a stream replays exactly from a saved (seed, offset).
#pragma once

#include <cstdint>

namespace ponder {

struct GeneratorState {
  uint64_t seed = 0;
  uint64_t offset = 0;
  friend bool operator==(const GeneratorState&, const GeneratorState&) = default;
};

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : state_{seed, 0} {}

  // Reserves `blocks` Philox blocks and returns the first.
  uint64_t take(uint64_t blocks) {
    uint64_t first = state_.offset;
    state_.offset += blocks;
    return first;
  }
  uint64_t seed() const { return state_.seed; }
  GeneratorState state() const { return state_; }
  void set_state(GeneratorState state) { state_ = state; }

 private:
  GeneratorState state_;
};

}  // namespace ponder
