// Raw memory for tensor storage, per device, with statistics (current/peak bytes) that metrics
// and memory tests read. CPU blocks are 64-byte aligned so kernels can use aligned vector loads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

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
// Bytes this process could still allocate on `device`: the device's free memory plus what the
// caching pool holds unused (a GPU), or the memory the system has available (the CPU).
int64_t available_memory(Device device);

}  // namespace ponder
