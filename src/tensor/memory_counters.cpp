#include "tensor/memory_counters.h"

#include <algorithm>

namespace ponder {

void MemoryCounters::begin_census() {
  std::lock_guard<std::mutex> lock(census_mutex_);
  census_held_before_ = census_peak_ = current();
  census_on_.store(true);
}

MemoryCensus MemoryCounters::end_census() {
  std::lock_guard<std::mutex> lock(census_mutex_);
  census_on_.store(false);
  MemoryCensus c{.held_before = census_held_before_, .peak = census_peak_, .at_peak = {}};
  for (auto [bytes, count] : census_at_peak_) c.at_peak.push_back({bytes, count});
  census_blocks_.clear();
  census_sizes_.clear();
  census_at_peak_.clear();
  auto total = [](const MemoryCensus::Blocks& b) { return b.bytes * b.count; };
  std::stable_sort(c.at_peak.begin(), c.at_peak.end(),
                   [&](const MemoryCensus::Blocks& a, const MemoryCensus::Blocks& b) { return total(a) > total(b); });
  return c;
}

// `now` is the current total right after this allocation: a new high-water mark takes a copy of
// the sizes (a few dozen distinct ones in a training step, so the copies stay cheap).
void MemoryCounters::census_alloc(const void* ptr, int64_t nbytes, int64_t now) {
  std::lock_guard<std::mutex> lock(census_mutex_);
  if (!census_on_.load(std::memory_order_relaxed)) return;
  census_blocks_[ptr] = nbytes;
  ++census_sizes_[nbytes];
  if (now > census_peak_) {
    census_peak_ = now;
    census_at_peak_ = census_sizes_;
  }
}

void MemoryCounters::census_free(const void* ptr) {
  std::lock_guard<std::mutex> lock(census_mutex_);
  auto it = census_blocks_.find(ptr);
  if (it == census_blocks_.end()) return;  // allocated before the census began
  auto size = census_sizes_.find(it->second);
  if (--size->second == 0) census_sizes_.erase(size);
  census_blocks_.erase(it);
}

}  // namespace ponder
