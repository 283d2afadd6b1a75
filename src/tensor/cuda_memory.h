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
// Returns cached, entirely free segments of the shared pool to the driver.
void cuda_empty_cache(int device);
// Private pools (cuda_memory.cpp): while one is in use on a device, that device's requests are
// served from memory that no request outside it gets until the pool is retired, which hands it to
// the shared pool 0. What a CUDA graph records must find its buffers untouched on every replay.
// cuda_use_pool returns the pool that was in use.
int cuda_new_private_pool(int device);
int cuda_use_pool(int device, int pool);
void cuda_retire_private_pool(int device, int pool);
// Debugging aid for kernel tests: fill every new device allocation with 0xFF bytes (NaN for
// floating types), so elements a kernel forgets to write stand out.
void cuda_poison_allocations(bool on);
// Copies nbytes between host and/or device memory and waits for completion.
void cuda_copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes);

}  // namespace ponder
