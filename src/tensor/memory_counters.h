// Thread-safe allocation statistics shared by the host and device allocators.
#pragma once

#include <atomic>
#include <cstdint>

#include "tensor/allocator.h"

namespace ponder {

class MemoryCounters {
 public:
  void on_alloc(int64_t nbytes) {
    int64_t now = current_.fetch_add(nbytes, std::memory_order_relaxed) + nbytes;
    int64_t peak = peak_.load(std::memory_order_relaxed);
    while (now > peak && !peak_.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
    }
    count_.fetch_add(1, std::memory_order_relaxed);
  }
  void on_free(int64_t nbytes) { current_.fetch_sub(nbytes, std::memory_order_relaxed); }
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

 private:
  std::atomic<int64_t> current_{0};
  std::atomic<int64_t> peak_{0};
  std::atomic<int64_t> count_{0};
};

}  // namespace ponder
