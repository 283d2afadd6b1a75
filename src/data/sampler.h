// Sample order: a deterministic permutation per epoch, the same on every platform and rank.
//
// The order of epoch e is a Fisher-Yates shuffle driven by Philox 4x32-10 keyed by the seed, with
// the epoch and a draw counter as the counter (rejection sampling keeps every index uniform), so
// it depends on (size, seed, epoch) only. The global stream is epoch 0's order, then epoch 1's, and
// so on; the cursor counts the samples every rank together has consumed from it.
#pragma once

#include <cstdint>
#include <vector>

namespace ponder::data {

// The permutation of 0..size-1 for one epoch (the identity when shuffle is false).
std::vector<int64_t> epoch_order(int64_t size, uint64_t seed, int64_t epoch, bool shuffle = true);

class Sampler {
 public:
  Sampler(int64_t size, uint64_t seed, bool shuffle = true);

  int64_t size() const { return size_; }
  const std::vector<int64_t>& order(int64_t epoch) const;  // cached for the latest epoch asked

  // The next n samples of the global stream (continuing into the next epoch at an epoch's end);
  // advances the cursor by n.
  std::vector<int64_t> next_global_batch(int64_t n);

  // Samples consumed so far by all ranks together; save it with a checkpoint, restore it with
  // set_cursor to continue the same stream (with any world size).
  int64_t cursor() const { return cursor_; }
  void set_cursor(int64_t cursor);

  // Rank `rank` of `world`'s part of a global batch: the contiguous block
  // [rank * n / world, (rank + 1) * n / world). The parts are disjoint and, concatenated in rank
  // order, are the batch. n must be a multiple of world (ValueError otherwise).
  static std::vector<int64_t> rank_part(const std::vector<int64_t>& global_batch, int rank, int world);

 private:
  int64_t size_;
  uint64_t seed_;
  bool shuffle_;
  int64_t cursor_ = 0;
  mutable int64_t cached_epoch_ = -1;
  mutable std::vector<int64_t> cached_order_;
};

}  // namespace ponder::data
