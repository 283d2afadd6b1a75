// Raw memory for tensor storage, per device, with statistics (current/peak bytes) that metrics
// and memory tests read. CPU blocks are 64-byte aligned so kernels can use aligned vector loads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tensor/device.h"

namespace ponder {

struct MemoryStats {
  int64_t current_bytes = 0;   // bytes held by live tensors
  int64_t peak_bytes = 0;      // high-water mark of current_bytes since the last reset
  int64_t reserved_bytes = 0;  // bytes obtained from the system (>= current with a caching pool)
  int64_t num_allocs = 0;      // allocations served since start
  std::string str() const;
};

void* allocate_bytes(Device device, size_t nbytes);
void free_bytes(Device device, void* ptr, size_t nbytes);

MemoryStats memory_stats(Device device);
void reset_peak_memory(Device device);

// What a stretch of work holds at its own high-water mark, for `ponder bench`: between
// begin_memory_census and end_memory_census the blocks allocated on the device are tracked, and
// those live at the stretch's peak are counted by size, largest total first. (The allocator's
// peak_bytes is not reset.)
struct MemoryCensus {
  struct Blocks {
    int64_t bytes = 0;  // the allocator's block size
    int64_t count = 0;
  };
  int64_t held_before = 0;  // bytes live when the census began (weights, optimizer state, ...)
  int64_t peak = 0;         // the high-water mark during it
  std::vector<Blocks> at_peak;
};
void begin_memory_census(Device device);
MemoryCensus end_memory_census(Device device);
// Bytes this process could still allocate on `device`: the device's free memory plus what the
// caching pool holds unused (a GPU), or the memory the system has available (the CPU).
int64_t available_memory(Device device);

}  // namespace ponder
