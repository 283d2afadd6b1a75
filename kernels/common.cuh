// Shared launch machinery for ponder's CUDA kernels: the stream to launch on, grid sizing, error
// checks after launches, and elementwise iteration over strided operands.
#pragma once

#include <cuda_runtime.h>

#include <array>
#include <cstdint>

#include "tensor/cuda_context.h"
#include "tensor/tensor.h"

namespace ponder::kernels {

constexpr int kThreads = 256;

inline cudaStream_t stream_of(const Tensor& t) { return cuda::compute_stream(t.device().index); }

// Enough blocks to cover n items with `per_thread` each, capped so a grid-stride loop takes over.
inline unsigned grid_for(int64_t n, int per_thread = 1) {
  int64_t blocks = (n + int64_t(kThreads) * per_thread - 1) / (int64_t(kThreads) * per_thread);
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > 65535 * 8 ? 65535 * 8 : blocks));
}

// Throws a DeviceError naming the kernel if its launch failed.
inline void check_launch(const char* kernel) { cuda::check(cudaGetLastError(), kernel); }

// Element offsets of N operands sharing a shape (up to 8 dims after collapsing), computed from the
// linear index of the element in row-major order.
template <int N>
struct Indexer {
  int ndim;
  int64_t sizes[IntVec::kMaxDims];
  int64_t strides[N][IntVec::kMaxDims];

  __device__ __forceinline__ void offsets(int64_t linear, int64_t (&out)[N]) const {
#pragma unroll
    for (int k = 0; k < N; ++k) out[k] = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      int64_t idx = linear % sizes[d];
      linear /= sizes[d];
#pragma unroll
      for (int k = 0; k < N; ++k) out[k] += idx * strides[k][d];
    }
  }
};

// Builds an Indexer, merging dims where every operand is contiguous across them.
template <int N>
Indexer<N> make_indexer(const std::array<Tensor, N>& operands) {
  Indexer<N> ix{};
  const Shape& shape = operands[0].shape();
  ix.ndim = 0;
  for (int i = 0; i < shape.size(); ++i) {
    if (shape[i] == 1) continue;  // size-1 dims never move the offset
    bool merge = ix.ndim > 0;
    for (int k = 0; k < N && merge; ++k)
      merge = ix.strides[k][ix.ndim - 1] == operands[k].strides()[i] * shape[i];
    if (merge) {
      ix.sizes[ix.ndim - 1] *= shape[i];
      for (int k = 0; k < N; ++k) ix.strides[k][ix.ndim - 1] = operands[k].strides()[i];
    } else {
      ix.sizes[ix.ndim] = shape[i];
      for (int k = 0; k < N; ++k) ix.strides[k][ix.ndim] = operands[k].strides()[i];
      ++ix.ndim;
    }
  }
  if (ix.ndim == 0) {  // a scalar, or all dims of size 1
    ix.ndim = 1;
    ix.sizes[0] = 1;
    for (int k = 0; k < N; ++k) ix.strides[k][0] = 0;
  }
  return ix;
}

template <int N>
bool all_contiguous(const std::array<Tensor, N>& operands) {
  for (const Tensor& t : operands)
    if (!t.is_contiguous()) return false;
  return true;
}

}  // namespace ponder::kernels
