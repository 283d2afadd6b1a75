// Device memory behind the allocator interface. Implemented by cuda_memory.cpp when ponder is
// built with CUDA, and by no_cuda.cpp (which refuses every request clearly) when it is not.
#pragma once

#include <cstddef>

#include "tensor/allocator.h"

namespace ponder {

void* cuda_allocate(int device, size_t nbytes);
void cuda_free(int device, void* ptr, size_t nbytes);
MemoryStats cuda_memory_stats(int device);
// The device's free memory (cudaMemGetInfo) plus the pool's cached, unused bytes.
int64_t cuda_available_memory(int device);
void cuda_reset_peak_memory(int device);
void cuda_begin_memory_census(int device);
MemoryCensus cuda_end_memory_census(int device);
// Returns cached, entirely free segments to the driver.
void cuda_empty_cache(int device);
// Debugging aid for kernel tests: fill every new device allocation with 0xFF bytes (NaN for
// floating types), so elements a kernel forgets to write stand out.
void cuda_poison_allocations(bool on);
// Copies nbytes between host and/or device memory and waits for completion.
void cuda_copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes);

}  // namespace ponder
