// Marks small functions usable from both host code and CUDA device code.
#pragma once

#if defined(__CUDACC__)
#define PONDER_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define PONDER_HOST_DEVICE inline
#endif
