// CUDA reductions. x is viewed as [outer, reduced, inner] where its layout allows:
//  - inner == 1 (trailing dims reduced): rows. A warp per short row, a block per long row; when
//    long rows are few, each row is split over several blocks whose partial results a second
//    kernel combines (in chunk order).
//  - inner >= 32 (leading or middle dims reduced): columns. A block covers 32 neighbouring
//    columns (coalesced loads); its 8 thread rows split the reduced extent and combine in a tree.
//    Long columns are split over blocks in the same way as long rows.
//  - anything else: x is copied with the reduced dims last (as the CPU kernel does), then rows.
// No atomics: each output is combined in an order fixed by the shapes, so runs are bit-identical.
#include "backend/cuda/reduce.h"

#include <algorithm>
#include <optional>

#include "kernels/rows.cuh"

namespace ponder::backend::cuda {
namespace {
using namespace kernels;

constexpr int kColumnRows = 8;  // thread rows of a column block (blockDim = 32 x 8)
constexpr int64_t kMaxGrid = 65535 * 8;
// Long rows (columns) are split over blocks when fewer than kSplitBelow blocks would leave SMs idle;
// the split aims at kTargetBlocks blocks without making a chunk shorter than kMinChunk elements
// (kMinColumnChunk rows).
constexpr int64_t kSplitBelow = 256;
constexpr int64_t kTargetBlocks = 1024;
constexpr int64_t kMinChunk = 4096;
constexpr int64_t kMinColumnChunk = 512;  // rows of a column chunk (64 per thread row)

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
unsigned grid_of(int64_t blocks) { return static_cast<unsigned>(std::clamp<int64_t>(blocks, 1, kMaxGrid)); }

template <class T>
__device__ __forceinline__ bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>) {
    return v != v;
  } else {
    return false;
  }
}

// Sum (or sum of squares) accumulated in compute_t<T>: f32 for bf16 and f32, f64 for f64, the type
// itself for integers (which wrap like the CPU's).
template <class T>
struct Sum : Plus<compute_t<T>> {
  using A = compute_t<T>;
  using State = A;
  using Out = T;
  bool squares;
  __device__ State lift(T v, int64_t) const {
    const A a = static_cast<A>(v);
    return squares ? A(a * a) : a;
  }
  __device__ Out finish(State s) const { return Out(s); }
};

// Largest value (or its index): NaN above everything, the lower index among equals, which is the
// CPU's first maximum with NaN winning.
template <class T, bool kIndex>
struct Max {
  using C = compute_t<T>;
  struct State {
    C v;
    int64_t i;  // < 0: no element yet
  };
  using Out = std::conditional_t<kIndex, int64_t, T>;
  __device__ State identity() const { return {C(0), -1}; }
  __device__ State lift(T v, int64_t i) const { return {static_cast<C>(v), i}; }
  __device__ State combine(State a, State b) const {
    if (a.i < 0) return b;
    if (b.i < 0) return a;
    const bool a_nan = is_nan(a.v), b_nan = is_nan(b.v);
    const bool b_first = b.i < a.i;
    const bool b_wins = a_nan || b_nan ? b_nan && (!a_nan || b_first) : b.v > a.v || (b.v == a.v && b_first);
    return b_wins ? b : a;
  }
  __device__ State shuffle(State s, int mask) const { return {shuffle_xor(s.v, mask), shuffle_xor(s.i, mask)}; }
  __device__ Out finish(State s) const {
    if constexpr (kIndex) {
      return s.i;
    } else {
      return Out(s.v);
    }
  }
};

template <class R, class T>
__device__ __forceinline__ typename R::State fold(const R& r, const T* row, int64_t begin, int64_t end,
                                                  int rank, int size, bool vec) {
  typename R::State s = r.identity();
  visit_row(begin, end, rank, size, vec, [&](int64_t i, T v) { s = r.combine(s, r.lift(v, i)); }, row);
  return s;
}

// Rows of length len, cut into `chunks` chunks of `chunk` elements; one team per (row, chunk).
// With one chunk per row it writes finished values, else one partial State per chunk.
template <bool kBlock, bool kPartial, class R, class T>
__global__ void reduce_rows(R r, std::conditional_t<kPartial, typename R::State, typename R::Out>* out,
                            const T* x, int64_t rows, int64_t len, int64_t chunk, int64_t chunks, bool vec) {
  using State = typename R::State;
  __shared__ State scratch[kWarp];
  const RowTeam<kBlock> team;
  for (int64_t b = team.first_row(); b < rows * chunks; b += team.row_step()) {
    const int64_t row = b / chunks, begin = (b % chunks) * chunk, end = std::min(len, begin + chunk);
    const State s = team.reduce(fold(r, x + row * len, begin, end, team.rank(), team.size(), vec), r, scratch);
    if (team.rank() == 0) {
      if constexpr (kPartial) {
        out[b] = s;
      } else {
        out[b] = r.finish(s);
      }
    }
  }
}

// out[row] = the row's `chunks` partial States combined, a warp per row.
template <class R>
__global__ void finish_chunks(R r, typename R::Out* out, const typename R::State* partial, int64_t rows,
                              int64_t chunks) {
  const RowTeam<false> team;
  for (int64_t row = team.first_row(); row < rows; row += team.row_step()) {
    typename R::State s = r.identity();
    for (int64_t c = team.rank(); c < chunks; c += kWarp) s = r.combine(s, partial[row * chunks + c]);
    s = warp_reduce(s, r);
    if (team.rank() == 0) out[row] = r.finish(s);
  }
}

// Columns of x [outer, len, inner]: out[o, col] = x[o, :, col] combined, the reduced extent cut
// into `chunks` chunks of `chunk`. Block b covers columns tile * 32 + threadIdx.x of chunk c of
// outer index o (b = (o * chunks + c) * tiles + tile); thread row y takes k = y, y + 8, ... of the
// chunk, and the 8 partials meet in a tree. With one chunk it writes finished values, else the
// partial States as [chunks, outer * inner] for finish_columns.
template <bool kPartial, class R, class T>
__global__ void reduce_columns(R r, std::conditional_t<kPartial, typename R::State, typename R::Out>* out,
                               const T* x, int64_t outer, int64_t len, int64_t inner, int64_t tiles, int64_t chunk,
                               int64_t chunks) {
  using State = typename R::State;
  __shared__ State part[kColumnRows][kWarp];
  const int tx = threadIdx.x, ty = threadIdx.y;
  for (int64_t b = blockIdx.x; b < outer * chunks * tiles; b += gridDim.x) {
    const int64_t o = b / (chunks * tiles), c = b / tiles % chunks, col = (b % tiles) * kWarp + tx;
    const int64_t end = std::min(len, (c + 1) * chunk);
    State s = r.identity();
    if (col < inner) {
      const T* p = x + o * len * inner + col;
      for (int64_t k = c * chunk + ty; k < end; k += kColumnRows) s = r.combine(s, r.lift(p[k * inner], k));
    }
    part[ty][tx] = s;
    __syncthreads();
    for (int half = kColumnRows / 2; half > 0; half /= 2) {
      if (ty < half) part[ty][tx] = r.combine(part[ty][tx], part[ty + half][tx]);
      __syncthreads();
    }
    if (ty == 0 && col < inner) {
      if constexpr (kPartial) {
        out[(c * outer + o) * inner + col] = part[0][tx];
      } else {
        out[o * inner + col] = r.finish(part[0][tx]);
      }
    }
    __syncthreads();  // part is refilled for the next block index
  }
}

// out[i] = partial[0, i], partial[1, i], ... combined in chunk order, a thread per output.
template <class R>
__global__ void finish_columns(R r, typename R::Out* out, const typename R::State* partial, int64_t count,
                               int64_t chunks) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count; i += gridDim.x * int64_t(blockDim.x)) {
    typename R::State s = r.identity();
    for (int64_t c = 0; c < chunks; ++c) s = r.combine(s, partial[c * count + i]);
    out[i] = r.finish(s);
  }
}

// Scratch for partial States, freed (back to the stream-ordered cache) once the kernels are queued.
template <class State>
Tensor partial_states(int64_t count, Device device) {
  return Tensor::empty({count * int64_t(sizeof(State))}, {DType::u8, device});
}

template <class R, class T>
void launch_rows(const R& r, typename R::Out* out, const T* x, int64_t rows, int64_t len, Device device,
                 cudaStream_t stream) {
  using State = typename R::State;
  const bool vec = rows_aligned(x, rows, len);
  const RowLaunch launch = row_launch(rows, len);
  if (!launch.block) {
    reduce_rows<false, false><<<launch.grid, launch.threads, 0, stream>>>(r, out, x, rows, len, len, 1, vec);
    return check_launch("reduce");
  }
  constexpr int64_t V = 16 / sizeof(T);
  int64_t chunk = len, chunks = 1;
  if (rows < kSplitBelow && len >= 2 * kMinChunk) {
    const int64_t wanted = std::min(ceil_div(kTargetBlocks, rows), len / kMinChunk);
    chunk = ceil_div(ceil_div(len, wanted), V) * V;  // chunks start on pack boundaries
    chunks = ceil_div(len, chunk);
  }
  if (chunks == 1) {
    reduce_rows<true, false><<<launch.grid, launch.threads, 0, stream>>>(r, out, x, rows, len, chunk, 1, vec);
    return check_launch("reduce");
  }
  Tensor partial = partial_states<State>(rows * chunks, device);
  State* p = static_cast<State*>(partial.data_ptr());
  reduce_rows<true, true><<<grid_of(rows * chunks), kRowBlockThreads, 0, stream>>>(r, p, x, rows, len, chunk,
                                                                                   chunks, vec);
  check_launch("reduce");
  finish_chunks<<<grid_of(ceil_div(rows, kThreads / kWarp)), kThreads, 0, stream>>>(r, out, p, rows, chunks);
  check_launch("reduce");
}

// x as [outer, len, inner]: contiguous, and the reduced dims (size-1 dims aside) one block of
// neighbours. nullopt when x's layout is not like that.
struct Layout {
  int64_t outer = 1, len = 1, inner = 1;
};

std::optional<Layout> middle_layout(const Tensor& x, const IntVec& dims) {
  if (!x.is_contiguous()) return std::nullopt;
  Layout l;
  enum { before, inside, after } at = before;
  for (int i = 0; i < x.dim(); ++i) {
    const int64_t size = x.shape()[i];
    if (size == 1) continue;  // moves no offset in a contiguous tensor
    if (std::find(dims.begin(), dims.end(), i) != dims.end()) {
      if (at == after) return std::nullopt;
      at = inside;
      l.len *= size;
    } else if (at == before) {
      l.outer *= size;
    } else {
      at = after;
      l.inner *= size;
    }
  }
  return l;
}

template <class R, class T>
void launch_columns(const R& r, typename R::Out* out, const T* x, const Layout& l, Device device, cudaStream_t stream) {
  using State = typename R::State;
  const int64_t tiles = ceil_div(l.inner, kWarp), blocks = l.outer * tiles;
  int64_t chunk = l.len, chunks = 1;
  if (blocks < kSplitBelow && l.len >= 2 * kMinColumnChunk) {
    chunk = ceil_div(l.len, std::min(ceil_div(kTargetBlocks, blocks), l.len / kMinColumnChunk));
    chunks = ceil_div(l.len, chunk);
  }
  const dim3 threads(kWarp, kColumnRows);
  if (chunks == 1) {
    reduce_columns<false><<<grid_of(blocks), threads, 0, stream>>>(r, out, x, l.outer, l.len, l.inner, tiles, chunk, 1);
    return check_launch("reduce");
  }
  Tensor partial = partial_states<State>(chunks * l.outer * l.inner, device);
  State* p = static_cast<State*>(partial.data_ptr());
  reduce_columns<true><<<grid_of(blocks * chunks), threads, 0, stream>>>(r, p, x, l.outer, l.len, l.inner, tiles, chunk,
                                                                          chunks);
  check_launch("reduce");
  finish_columns<<<grid_for(l.outer * l.inner), kThreads, 0, stream>>>(r, out, p, l.outer * l.inner, chunks);
  check_launch("reduce");
}

template <class T, class R>
void run(const R& r, const Tensor& out, const Tensor& x, const IntVec& dims) {
  using Out = typename R::Out;
  cudaStream_t stream = stream_of(x);
  const std::optional<Layout> l = middle_layout(x, dims);
  if (l && l->inner == 1) return launch_rows(r, out.data<Out>(), x.data<T>(), l->outer, l->len, x.device(), stream);
  if (l && l->inner >= kWarp) return launch_columns(r, out.data<Out>(), x.data<T>(), *l, x.device(), stream);
  int64_t len = 1;
  for (int64_t d : dims) len *= x.shape()[static_cast<int>(d)];
  Tensor rows = reduced_dims_last(x, dims);
  launch_rows(r, out.data<Out>(), rows.data<T>(), out.numel(), len, x.device(), stream);
}

}  // namespace

void reduce(ReduceOp op, const Tensor& out, const Tensor& x, const IntVec& dims) {
  if (out.numel() == 0) return;
  visit_dtype(x.dtype(), "reduce", [&](auto tag) {
    using T = decltype(tag);
    switch (op) {
      case ReduceOp::sum: return run<T>(Sum<T>{{}, false}, out, x, dims);
      case ReduceOp::sum_squares: return run<T>(Sum<T>{{}, true}, out, x, dims);
      case ReduceOp::max: return run<T>(Max<T, false>{}, out, x, dims);
      case ReduceOp::argmax: return run<T>(Max<T, true>{}, out, x, dims);
    }
  });
}

}  // namespace ponder::backend::cuda
