// Elementwise maps on the GPU: out[i] = fn(in[i]...) over operands that share a shape.
// Contiguous, 16-byte-aligned operands take a vectorised path (each thread moves 16 bytes of the
// widest operand per step); anything else goes through an Indexer.
#pragma once

#include <algorithm>
#include <utility>

#include "kernels/common.cuh"

namespace ponder::kernels {

template <class T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};

template <int V, class Out, class Fn, class... In>
__device__ __forceinline__ void apply_pack(Pack<Out, V>& o, const Fn& fn, const Pack<In, V>&... in) {
#pragma unroll
  for (int j = 0; j < V; ++j) o.v[j] = Out(fn(in.v[j]...));
}

template <int V, class Out, class Fn, class... In>
__global__ void map_packed(int64_t packs, Fn fn, Out* __restrict__ out, const In* __restrict__... in) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < packs; i += int64_t(gridDim.x) * blockDim.x) {
    Pack<Out, V> o;
    apply_pack<V>(o, fn, reinterpret_cast<const Pack<In, V>*>(in)[i]...);
    reinterpret_cast<Pack<Out, V>*>(out)[i] = o;
  }
}

template <class Out, class Fn, class... In>
__global__ void map_tail(int64_t begin, int64_t n, Fn fn, Out* __restrict__ out, const In* __restrict__... in) {
  int64_t i = begin + blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i < n) out[i] = Out(fn(in[i]...));
}

// in[k] is read at off[k + 1]; the index sequence pairs them (an in-argument counter would be
// evaluated in an unspecified order).
template <class Out, class Fn, size_t... K, class... In>
__device__ __forceinline__ void apply_strided(Out* out, const int64_t* off, const Fn& fn, std::index_sequence<K...>,
                                              const In*... in) {
  out[off[0]] = Out(fn(in[off[K + 1]]...));
}

template <class Out, class Fn, class... In>
__global__ void map_strided(int64_t n, Indexer<1 + sizeof...(In)> ix, Fn fn, Out* out, const In*... in) {
  constexpr int N = 1 + sizeof...(In);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[N];
    ix.offsets(i, off);
    apply_strided(out, off, fn, std::index_sequence_for<In...>{}, in...);
  }
}

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

// Launches out[i] = Out(fn(inputs[i]...)) on out's device; inputs have out's shape.
template <class Out, class... In, class Fn, class... Ts>
void map(const char* name, const Tensor& out, const Fn& fn, const Ts&... inputs) {
  static_assert(sizeof...(In) == sizeof...(Ts));
  const int64_t n = out.numel();
  if (n == 0) return;
  cudaStream_t stream = stream_of(out);
  std::array<Tensor, 1 + sizeof...(In)> operands{out, inputs...};
  constexpr size_t widest = std::max({sizeof(Out), sizeof(In)...});
  constexpr int V = static_cast<int>(16 / widest);
  bool aligned = aligned16(out.data_ptr()) && (aligned16(inputs.data_ptr()) && ...);
  if (all_contiguous<1 + sizeof...(In)>(operands) && aligned && V > 1) {
    const int64_t packs = n / V;
    if (packs > 0) {
      map_packed<V, Out><<<grid_for(packs), kThreads, 0, stream>>>(
          packs, fn, out.data<Out>(), inputs.template data<In>()...);
    }
    if (packs * V < n) {
      map_tail<Out><<<1, kThreads, 0, stream>>>(packs * V, n, fn, out.data<Out>(), inputs.template data<In>()...);
    }
  } else {
    map_strided<Out><<<grid_for(n), kThreads, 0, stream>>>(
        n, make_indexer<1 + sizeof...(In)>(operands), fn, out.data<Out>(), inputs.template data<In>()...);
  }
  check_launch(name);
}

}  // namespace ponder::kernels
