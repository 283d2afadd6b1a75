// Row-wise device building blocks shared by the reduction, softmax and cross-entropy kernels:
// visiting the elements of a contiguous row (16-byte vector loads where aligned), warp and block
// reductions with a fixed combination order (so results are deterministic for a given shape), and
// a "team" of threads (a warp or a whole block) that handles one row at a time.
//
// A reduction op is a struct with
//   State identity() const;                  // the neutral element
//   State combine(State a, State b) const;   // associative and commutative
//   State shuffle(State s, int mask) const;  // s from the lane `mask` away (__shfl_xor_sync)
// and a State that is a trivially constructible aggregate (it lives in shared memory).
#pragma once

#include <limits>
#include <type_traits>

#include "kernels/map.cuh"

namespace ponder::kernels {

constexpr int kWarp = 32;
// Rows up to this length get a warp each; longer rows get a block.
constexpr int64_t kWarpRowMax = 1024;
constexpr int kRowBlockThreads = 512;

// v from the lane `mask` away. Narrow integers travel as int (the shuffles take 4 or 8 bytes).
template <class T>
__device__ __forceinline__ T shuffle_xor(T v, int mask) {
  if constexpr (std::is_integral_v<T> && sizeof(T) < 4) {
    return static_cast<T>(__shfl_xor_sync(0xffffffffu, static_cast<int>(v), mask));
  } else {
    return __shfl_xor_sync(0xffffffffu, v, mask);
  }
}

// Butterfly over the 32 lanes: every lane ends with the combination of all 32 States. Partner
// lanes combine the same two operands in swapped order, and every op here is commutative, so all
// lanes hold the same bits.
template <class State, class Op>
__device__ __forceinline__ State warp_reduce(State s, const Op& op) {
#pragma unroll
  for (int mask = kWarp / 2; mask > 0; mask /= 2) s = op.combine(s, op.shuffle(s, mask));
  return s;
}

// Every thread of the block gets the combination of all threads' States. blockDim.x is a
// multiple of 32; `scratch` holds 32 States in shared memory and may be reused on return.
template <class State, class Op>
__device__ __forceinline__ State block_reduce(State s, const Op& op, State* scratch) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp, warps = blockDim.x / kWarp;
  s = warp_reduce(s, op);
  if (lane == 0) scratch[warp] = s;
  __syncthreads();
  s = warp_reduce(lane < warps ? scratch[lane] : op.identity(), op);
  __syncthreads();
  return s;
}

template <class A>
struct Plus {
  __device__ A identity() const { return A(0); }
  __device__ A combine(A a, A b) const { return a + b; }
  __device__ A shuffle(A s, int mask) const { return shuffle_xor(s, mask); }
};

template <int V, class Fn, class... In>
__device__ __forceinline__ void visit_pack(int64_t first, Fn& fn, const Pack<In, V>&... in) {
#pragma unroll
  for (int j = 0; j < V; ++j) fn(first + j, in.v[j]...);
}

// Calls fn(i, rows[i]...) for the elements i in [begin, end) owned by thread `rank` of `size`: the
// 16-byte packs rank, rank + size, ... when `vec` (every rows + begin 16-byte aligned, elements of
// one size), then the remaining elements one by one. Each thread sees its i in increasing order.
template <class Fn, class... In>
__device__ __forceinline__ void visit_row(int64_t begin, int64_t end, int rank, int size, bool vec, Fn&& fn,
                                          const In*... rows) {
  constexpr size_t kElement = std::max({sizeof(In)...});
  constexpr int V = 16 / kElement;
  int64_t rest = begin;
  if (vec) {
    static_assert(((sizeof(In) == kElement) && ...), "vectorised rows need one element size");
    const int64_t count = (end - begin) / V;
    for (int64_t k = rank; k < count; k += size) {
      visit_pack<V>(begin + k * V, fn, reinterpret_cast<const Pack<In, V>*>(rows + begin)[k]...);
    }
    rest = begin + count * V;
  }
  for (int64_t i = rest + rank; i < end; i += size) fn(i, rows[i]...);
}

template <int V, class Out, class Fn, class... In>
__device__ __forceinline__ void apply_pack_at(Pack<Out, V>& o, int64_t first, const Fn& fn,
                                              const Pack<In, V>&... in) {
#pragma unroll
  for (int j = 0; j < V; ++j) o.v[j] = Out(fn(first + j, in.v[j]...));
}

// out[i] = fn(i, in[i]...) for i in [0, n), split over the threads like visit_row. Every element is
// read and written by the same thread, so `out` may be one of the inputs (in place). When `vec`,
// out and the inputs are 16-byte aligned and have elements of one size.
template <class Out, class Fn, class... In>
__device__ __forceinline__ void map_row(Out* out, int64_t n, int rank, int size, bool vec, const Fn& fn,
                                        const In*... in) {
  constexpr int V = 16 / sizeof(Out);
  int64_t rest = 0;
  if (vec) {
    static_assert(((sizeof(In) == sizeof(Out)) && ...), "vectorised rows need one element size");
    const int64_t count = n / V;
    for (int64_t k = rank; k < count; k += size) {
      Pack<Out, V> o;
      apply_pack_at<V>(o, k * V, fn, reinterpret_cast<const Pack<In, V>*>(in)[k]...);
      reinterpret_cast<Pack<Out, V>*>(out)[k] = o;
    }
    rest = count * V;
  }
  for (int64_t i = rest + rank; i < n; i += size) out[i] = Out(fn(i, in[i]...));
}

// The threads that share one row: a warp (kBlock false) or the whole block. Rows are dealt to
// teams in a grid-stride loop; every thread of a team walks the same rows, so the team's
// reductions (shuffles, __syncthreads) are reached by all of its threads.
template <bool kBlock>
struct RowTeam {
  __device__ int rank() const { return kBlock ? threadIdx.x : threadIdx.x % kWarp; }
  __device__ int size() const { return kBlock ? blockDim.x : kWarp; }
  __device__ int64_t first_row() const {
    return kBlock ? blockIdx.x : blockIdx.x * int64_t(blockDim.x / kWarp) + threadIdx.x / kWarp;
  }
  __device__ int64_t row_step() const { return kBlock ? gridDim.x : gridDim.x * int64_t(blockDim.x / kWarp); }
  template <class State, class Op>
  __device__ State reduce(State s, const Op& op, State* scratch) const {
    if constexpr (kBlock) {
      return block_reduce(s, op, scratch);
    } else {
      return warp_reduce(s, op);
    }
  }
};

// How to launch a kernel templated on RowTeam over `rows` contiguous rows of length n.
struct RowLaunch {
  bool block;  // a block per row, else a warp per row
  unsigned grid;
  unsigned threads;
};

inline RowLaunch row_launch(int64_t rows, int64_t n) {
  constexpr int64_t kMaxGrid = 65535 * 8;  // the grid-stride loop covers the rest
  if (n <= kWarpRowMax) {
    const int64_t per_block = kThreads / kWarp;
    return {false, static_cast<unsigned>(std::clamp<int64_t>((rows + per_block - 1) / per_block, 1, kMaxGrid)),
            static_cast<unsigned>(kThreads)};
  }
  return {true, static_cast<unsigned>(std::clamp<int64_t>(rows, 1, kMaxGrid)), static_cast<unsigned>(kRowBlockThreads)};
}

// Calls fn(std::true_type{}) for a block per row, fn(std::false_type{}) for a warp per row.
template <class Fn>
void with_team(const RowLaunch& launch, Fn&& fn) {
  if (launch.block) {
    fn(std::true_type{});
  } else {
    fn(std::false_type{});
  }
}

// Rows of length n starting at `base` are all 16-byte aligned (so visit_row/map_row may use packs).
template <class T>
bool rows_aligned(const T* base, int64_t rows, int64_t n) {
  return aligned16(base) && (rows <= 1 || n % (16 / int64_t(sizeof(T))) == 0);
}

// Running log-sum-exp: m the largest element so far, s = sum(exp(x - m)) over the elements so far.
// Starting from {-inf, 0}, -inf elements add nothing (exp(-inf - m) = 0 for any finite final m), and
// a row of only -inf ends at {-inf, 0}, whose softmax is NaN as on the CPU. NaN and +inf elements
// make s NaN, again as on the CPU.
template <class A>
struct LogSumExp {
  A m, s;
};

template <class A>
struct OnlineLogSumExp {
  static constexpr A kNegInf = -std::numeric_limits<A>::infinity();
  __device__ LogSumExp<A> identity() const { return {kNegInf, A(0)}; }
  __device__ void add(LogSumExp<A>& st, A x) const {
    using std::exp;
    if (x > st.m) {
      st.s = st.s * exp(st.m - x) + exp(x - x);  // exp(x - x): 1, or NaN for x = +inf
      st.m = x;
    } else if (x != kNegInf) {
      st.s += exp(x - st.m);
    }
  }
  __device__ LogSumExp<A> combine(LogSumExp<A> a, LogSumExp<A> b) const {
    using std::exp;
    const A m = a.m > b.m ? a.m : b.m;
    if (m == kNegInf) return {m, a.s + b.s};
    return {m, a.s * exp(a.m - m) + b.s * exp(b.m - m)};
  }
  __device__ LogSumExp<A> shuffle(LogSumExp<A> st, int mask) const {
    return {shuffle_xor(st.m, mask), shuffle_xor(st.s, mask)};
  }
};

}  // namespace ponder::kernels
