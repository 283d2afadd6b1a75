#include "data/sampler.h"

#include <numeric>

#include "tensor/error.h"
#include "tensor/philox.h"

namespace ponder::data {
namespace {

// Uniform integers below a bound from the Philox stream of (seed, epoch).
class Draws {
 public:
  Draws(uint64_t seed, uint64_t epoch) : seed_(seed), epoch_(epoch) {}

  uint64_t below(uint64_t bound) {
    // Values under 2^64 mod bound would make small results more likely; draw again.
    const uint64_t reject_under = (0 - bound) % bound;
    for (;;) {
      const uint64_t x = next();
      if (x >= reject_under) return x % bound;
    }
  }

 private:
  uint64_t next() {
    const philox::Words w =
        philox::philox4x32_10(static_cast<uint32_t>(draw_), static_cast<uint32_t>(draw_ >> 32),
                              static_cast<uint32_t>(epoch_), static_cast<uint32_t>(epoch_ >> 32),
                              static_cast<uint32_t>(seed_), static_cast<uint32_t>(seed_ >> 32));
    ++draw_;
    return (static_cast<uint64_t>(w.w[0]) << 32) | w.w[1];
  }

  uint64_t seed_, epoch_, draw_ = 0;
};

}  // namespace

std::vector<int64_t> epoch_order(int64_t size, uint64_t seed, int64_t epoch, bool shuffle) {
  PONDER_CHECK(size >= 0 && epoch >= 0, ValueError, "epoch_order: size ", size, " and epoch ", epoch,
               " must be non-negative");
  std::vector<int64_t> order(size);
  std::iota(order.begin(), order.end(), 0);
  if (!shuffle) return order;
  Draws draws(seed, static_cast<uint64_t>(epoch));
  for (int64_t i = size - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(draws.below(static_cast<uint64_t>(i) + 1));
    std::swap(order[i], order[j]);
  }
  return order;
}

Sampler::Sampler(int64_t size, uint64_t seed, bool shuffle) : size_(size), seed_(seed), shuffle_(shuffle) {
  PONDER_CHECK(size > 0, ValueError, "Sampler: the dataset has no samples");
}

const std::vector<int64_t>& Sampler::order(int64_t epoch) const {
  if (epoch != cached_epoch_) {
    cached_order_ = epoch_order(size_, seed_, epoch, shuffle_);
    cached_epoch_ = epoch;
  }
  return cached_order_;
}

std::vector<int64_t> Sampler::next_global_batch(int64_t n) {
  PONDER_CHECK(n > 0, ValueError, "Sampler: a batch needs at least one sample, got ", n);
  std::vector<int64_t> batch;
  batch.reserve(n);
  for (int64_t k = 0; k < n; ++k, ++cursor_) batch.push_back(order(cursor_ / size_)[cursor_ % size_]);
  return batch;
}

void Sampler::set_cursor(int64_t cursor) {
  PONDER_CHECK(cursor >= 0, ValueError, "Sampler: cursor must be non-negative, got ", cursor);
  cursor_ = cursor;
}

std::vector<int64_t> Sampler::rank_part(const std::vector<int64_t>& global_batch, int rank, int world) {
  const auto n = static_cast<int64_t>(global_batch.size());
  PONDER_CHECK(world > 0 && rank >= 0 && rank < world, ValueError, "Sampler: rank ", rank, " is not in a world of ",
               world);
  PONDER_CHECK(n % world == 0, ValueError, "Sampler: a global batch of ", n, " samples does not split over ", world,
               " ranks");
  const int64_t part = n / world;
  return {global_batch.begin() + rank * part, global_batch.begin() + (rank + 1) * part};
}

}  // namespace ponder::data
