// Shared pieces of the row-wise CUDA kernels (norms, rotations, gated products): the dtypes they
// are built for, warp and team sums in a fixed order, and packed loads of V elements.
#pragma once

#include "kernels/map.cuh"

namespace ponder::kernels {

// Calls fn(T{}) for the dtypes the CUDA math kernels are built for (f32, bf16); refuses others
// naming the op, so an f64 tensor on the GPU fails clearly instead of silently converting.
template <class Fn>
decltype(auto) visit_f32_bf16(DType t, const char* op, Fn&& fn) {
  switch (t) {
    case DType::f32: return fn(float{});
    case DType::bf16: return fn(bf16{});
    default: fail<DTypeError>(op, ": the CUDA kernels take f32 or bf16, got ", dtype_name(t));
  }
}

template <class T>
T* data_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

// Elements per 16-byte pack of T.
template <class T>
constexpr int kPack = static_cast<int>(16 / sizeof(T));

inline bool aligned16(const Tensor& t) { return !t.defined() || aligned16(t.data_ptr()); }

template <int V, class T>
__device__ __forceinline__ Pack<T, V> load_pack(const T* p, int64_t pack) {
  return reinterpret_cast<const Pack<T, V>*>(p)[pack];
}

template <int V, class T>
__device__ __forceinline__ void store_pack(T* p, int64_t pack, const Pack<T, V>& v) {
  reinterpret_cast<Pack<T, V>*>(p)[pack] = v;
}

// Row kernels are compiled for blocks of at most kMaxRowThreads (__launch_bounds__), which leaves
// each thread up to 128 registers.
constexpr int kMaxRowThreads = 512;

// Butterfly sum: every lane ends with the same total, added in the same order on every run.
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int step = 16; step > 0; step >>= 1) v += __shfl_xor_sync(0xffffffffu, v, step);
  return v;
}

// Sum over a team of `team` threads that handles one row: a warp, or team / 32 consecutive warps
// of the block (a block may hold several teams). With team > 32 every thread of the block must
// call it, the same number of times, since it synchronises the block.
__device__ __forceinline__ float team_sum(float v, int team) {
  v = warp_sum(v);
  if (team <= 32) return v;
  __shared__ float partial[kMaxRowThreads / 32];
  const int warps = team / 32, first = threadIdx.x / 32 / warps * warps;
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = v;
  __syncthreads();
  float total = 0;
  for (int w = first; w < first + warps; ++w) total += partial[w];
  __syncthreads();  // partial is rewritten by the next call
  return total;
}

}  // namespace ponder::kernels
