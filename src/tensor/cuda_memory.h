// Device memory behind the allocator interface. Implemented by cuda_memory.cpp when ponder is
// built with CUDA, and by no_cuda.cpp (which refuses every request clearly) when it is not.
#pragma once

#include <cstddef>

#include "tensor/allocator.h"

namespace ponder {

void* cuda_allocate(int device, size_t nbytes);
void cuda_free(int device, void* ptr, size_t nbytes);
MemoryStats cuda_memory_stats(int device);
void cuda_reset_peak_memory(int device);
// Copies nbytes between host and/or device memory and waits for completion.
void cuda_copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes);

}  // namespace ponder
