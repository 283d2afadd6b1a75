// Thread-safe allocation statistics shared by the host and device allocators, and the memory
// census (allocator.h) they keep while one is running.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>

#include "tensor/allocator.h"

namespace ponder {

class MemoryCounters {
 public:
  void on_alloc(const void* ptr, int64_t nbytes) {
    int64_t now = current_.fetch_add(nbytes, std::memory_order_relaxed) + nbytes;
    int64_t peak = peak_.load(std::memory_order_relaxed);
    while (now > peak && !peak_.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
    }
    count_.fetch_add(1, std::memory_order_relaxed);
    if (census_on_.load(std::memory_order_relaxed)) census_alloc(ptr, nbytes, now);
  }
  void on_free(const void* ptr, int64_t nbytes) {
    current_.fetch_sub(nbytes, std::memory_order_relaxed);
    if (census_on_.load(std::memory_order_relaxed)) census_free(ptr);
  }
  void reset_peak() { peak_.store(current_.load()); }
  MemoryStats stats(int64_t reserved_bytes) const {
    MemoryStats s;
    s.current_bytes = current_.load();
    s.peak_bytes = peak_.load();
    s.reserved_bytes = reserved_bytes;
    s.num_allocs = count_.load();
    return s;
  }
  int64_t current() const { return current_.load(); }

  void begin_census();
  MemoryCensus end_census();

 private:
  void census_alloc(const void* ptr, int64_t nbytes, int64_t now);
  void census_free(const void* ptr);

  std::atomic<int64_t> current_{0};
  std::atomic<int64_t> peak_{0};
  std::atomic<int64_t> count_{0};

  std::atomic<bool> census_on_{false};
  std::mutex census_mutex_;
  int64_t census_held_before_ = 0, census_peak_ = 0;
  std::unordered_map<const void*, int64_t> census_blocks_;  // the live blocks allocated since it began
  std::map<int64_t, int64_t> census_sizes_;                 // their sizes: bytes -> count
  std::map<int64_t, int64_t> census_at_peak_;               // census_sizes_ at the high-water mark
};

}  // namespace ponder
