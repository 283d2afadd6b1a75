// Draws for task generators by explicit arithmetic on the generator's output: std's distributions and
// std::shuffle differ between standard libraries, and examples must be identical everywhere.
#pragma once

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace ponder::data {

// A value in [0, n) (the modulo bias is negligible for the small n that tasks use).
inline uint64_t draw_below(std::mt19937_64& rng, uint64_t n) { return rng() % n; }

// Fisher-Yates.
template <class T>
void shuffle_in_place(std::vector<T>& items, std::mt19937_64& rng) {
  for (size_t i = items.size(); i > 1; --i) std::swap(items[i - 1], items[draw_below(rng, i)]);
}

}  // namespace ponder::data
