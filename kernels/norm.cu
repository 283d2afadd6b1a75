// RMSNorm and LayerNorm on the GPU. A team of threads owns each row (a warp, or up to
// kMaxRowThreads threads for long rows) and reads it in 16-byte packs when the row length and the
// pointers allow, else element by element. Each thread keeps its share of the row in registers
// (kCached packs), so the statistics and the normalising pass read global memory once per row;
// only rows longer than kCached packs per thread (several "segments") are reread in each pass.
// Statistics are fp32.
//
// Parameter gradients are fused into the backward pass, deterministically: each thread adds g·xhat
// (and g) of its columns, row after row, into accumulator slots it alone owns (shared memory, or
// its block's row of the partial buffer when shared memory would not hold them); a block adds its
// teams' slots in team order into one [slots] row of the partial buffer (a "chunk"); a second
// kernel adds the chunks in a fixed order. The split depends only on the problem (shape, dtype,
// alignment), never on the device, so results are bit-reproducible. Beside shared accumulators a
// block keeps a copy of the weight, which both passes over each row read, and, where two such
// blocks still fit an SM, each team's next row: its threads copy their x and g packs of row i + 1
// (cp.async) while they work on row i, which the team's rows in turn would otherwise wait for.
#include <algorithm>
#include <initializer_list>

#include "backend/cuda/norm.h"
#include "kernels/async_copy.cuh"
#include "kernels/norm.cuh"
#include "kernels/row_groups.cuh"

namespace ponder::kernels {
namespace {

constexpr int kCached = 6;                      // packs (or elements) per thread and segment, in registers
constexpr int kBlockThreads = 256;              // a block holds several teams up to this many threads
constexpr int64_t kSharedAccBytes = 96 * 1024;  // accumulators above this go to global memory
constexpr int64_t kTwoBlockShared = 110 * 1024;  // at most this per block lets two blocks share an SM
constexpr int64_t kMaxChunks = 256;             // partial rows of the parameter gradients
constexpr int64_t kMinRowsPerTeam = 2;          // rows a team accumulates before its block sums

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Whether every defined operand can be read in packs of V: rows of D elements stay 16-byte aligned.
bool packable(int64_t d, int v, std::initializer_list<const Tensor*> operands) {
  if (d % v != 0) return false;
  for (const Tensor* t : operands)
    if (!aligned16(*t)) return false;
  return true;
}

// How a launch splits rows of `units` packs (V elements each) over teams and blocks.
struct RowPlan {
  int team = 32;               // threads per row, a multiple of 32
  int teams = 1;               // rows in flight per block
  int segments = 0;            // register loads per thread and row; 1 keeps the row in registers
  int64_t rows_per_team = 1;   // rows each team handles in turn
  int64_t slots = 0;           // accumulator floats per team and parameter gradient (>= D)
  bool shared_acc = false;     // accumulators in shared memory, else in the partial buffer
  bool shared_weight = false;  // the weight copied into shared memory after them, else read from global
  bool prefetch = false;       // each team copies its next row's x and g into shared memory after those
  size_t shared_bytes = 0;     // dynamic shared memory per block
  unsigned blocks = 0;         // = chunks of the parameter gradients
};

// A warp per row while kCached packs per lane hold it, else the fewest warps that do (at most
// kMaxRowThreads threads, then several segments). `stats` parameter gradients (0, 1 or 2) are
// accumulated: then each team takes at least kMinRowsPerTeam rows and there are <= kMaxChunks chunks,
// and a weight of `weight_bytes` goes to shared memory where it fits beside the accumulators. Rows
// of 16-byte packs held in registers (`row_bytes` = 16 · units, one segment) are then prefetched
// where two blocks of the result still fit an SM: a team's loads of row i + 1 are in flight while it
// works on row i.
RowPlan plan_rows(int64_t rows, int64_t units, int v, int stats, int64_t weight_bytes = 0, int64_t row_bytes = 0) {
  RowPlan p;
  if (units > int64_t(kCached) * 32)
    p.team = static_cast<int>(std::min<int64_t>(kMaxRowThreads, ceil_div(ceil_div(units, kCached), 32) * 32));
  p.segments = static_cast<int>(ceil_div(units, int64_t(kCached) * p.team));
  p.teams = std::max(1, kBlockThreads / p.team);
  p.slots = ceil_div(units, p.team) * v * p.team;
  if (stats > 0) {
    const int64_t team_bytes = p.slots * stats * int64_t(sizeof(float));
    while (p.teams > 1 && p.teams * team_bytes > kSharedAccBytes) p.teams /= 2;
    const int64_t acc_bytes = p.teams * team_bytes;
    p.shared_acc = acc_bytes <= kSharedAccBytes;  // else teams == 1
    p.shared_weight = p.shared_acc && weight_bytes > 0 && acc_bytes + weight_bytes <= kSharedAccBytes;
    if (p.shared_acc) p.shared_bytes = static_cast<size_t>(acc_bytes + (p.shared_weight ? weight_bytes : 0));
    const int64_t prefetch_bytes = p.teams * 2 * row_bytes;
    p.prefetch = p.shared_acc && p.segments == 1 && row_bytes == 16 * units &&
                 int64_t(p.shared_bytes) + prefetch_bytes <= kTwoBlockShared;
    if (p.prefetch) p.shared_bytes += static_cast<size_t>(prefetch_bytes);
    p.rows_per_team = std::max(kMinRowsPerTeam, ceil_div(rows, p.teams * kMaxChunks));
  }
  p.blocks = static_cast<unsigned>(ceil_div(rows, p.teams * p.rows_per_team));
  return p;
}

// Hides a held pack's value from the compiler, so that each pass widens it again instead of the
// compiler keeping every widened fp32 copy alive between passes (twice the registers for bf16, spills).
template <class T, int V>
__device__ __forceinline__ void keep_packed(Pack<T, V>& pack) {
  if constexpr (sizeof(pack) % 4 == 0) {
    auto* words = reinterpret_cast<uint32_t*>(&pack);
#pragma unroll
    for (int i = 0; i < int(sizeof(pack) / 4); ++i) asm volatile("" : "+r"(words[i]));
  }
}

// A thread's walk over its packs of one row. Its q-th pack is pack q·team + lane of the row (lanes
// take adjacent packs), held in register k = q % kCached during segment q / kCached. Each walk calls
// fn(k, p, q) for the thread's packs p < packs in order, after load(k, p, first) has filled
// register k: on the first walk over the row always, on later walks only if the row has several
// segments (else the registers still hold it). A dead row (past the end) visits nothing.
struct RowWalk {
  int segments, lane, team;
  int64_t packs;
  bool live;
  bool first = true;

  template <class Load, class Fn>
  __device__ __forceinline__ void operator()(Load&& load, Fn&& fn) {
    for (int s = 0; s < segments; ++s) {
      if (first || segments > 1) {
#pragma unroll
        for (int k = 0; k < kCached; ++k) {
          const int64_t p = (int64_t(s) * kCached + k) * team + lane;
          if (live && p < packs) load(k, p, first);
        }
      }
#pragma unroll
      for (int k = 0; k < kCached; ++k) {
        const int64_t q = int64_t(s) * kCached + k, p = q * team + lane;
        if (live && p < packs) fn(k, p, q);
      }
    }
    first = false;
  }
};

template <class T>
struct ForwardArgs {
  int64_t rows, d;
  int team, segments;
  const T* x;
  const T* residual;
  T* sum;
  const T* weight;
  const T* bias;
  T* y;
  float* mean;
  float* rstd;
  float eps;
};

template <class T, int V>
__global__ void __launch_bounds__(kMaxRowThreads) forward_kernel(ForwardArgs<T> a) {
  const int lane = threadIdx.x % a.team;
  const int64_t row = int64_t(blockIdx.x) * (blockDim.x / a.team) + threadIdx.x / a.team;
  const bool live = row < a.rows;  // a dead team still joins its block's team sums
  const int64_t packs = a.d / V, first = row * packs;
  RowWalk walk{a.segments, lane, a.team, packs, live};
  Pack<T, V> u[kCached];
  // First x (+ residual: the rounded sum is stored and normalised), later rereads from where it was.
  auto load = [&](int k, int64_t p, bool first_walk) {
    if (a.residual && first_walk) {
      Pack<T, V> x = load_pack<V>(a.x, first + p), r = load_pack<V>(a.residual, first + p);
#pragma unroll
      for (int j = 0; j < V; ++j) u[k].v[j] = T(float(x.v[j]) + float(r.v[j]));
      store_pack<V>(a.sum, first + p, u[k]);
    } else {
      u[k] = load_pack<V>(a.residual ? a.sum : a.x, first + p);
    }
  };
  float mu = 0;
  if (a.mean) {
    float s = 0;
    walk(load, [&](int k, int64_t, int64_t) {
#pragma unroll
      for (int j = 0; j < V; ++j) s += float(u[k].v[j]);
      keep_packed(u[k]);
    });
    mu = team_sum(s, a.team) / float(a.d);
  }
  // The variance about the mean (a second pass, over registers), as the CPU kernel, for accuracy.
  float squares = 0;
  walk(load, [&](int k, int64_t, int64_t) {
#pragma unroll
    for (int j = 0; j < V; ++j) {
      const float c = float(u[k].v[j]) - mu;
      squares += c * c;
    }
    keep_packed(u[k]);
  });
  const float rs = 1.0f / sqrtf(team_sum(squares, a.team) / float(a.d) + a.eps);
  if (live && lane == 0) {
    if (a.mean) a.mean[row] = mu;
    a.rstd[row] = rs;
  }
  walk(load, [&](int k, int64_t p, int64_t) {
    Pack<T, V> w{}, b{}, o;
    if (a.weight) w = load_pack<V>(a.weight, p);
    if (a.bias) b = load_pack<V>(a.bias, p);
#pragma unroll
    for (int j = 0; j < V; ++j) {
      float v = (float(u[k].v[j]) - mu) * rs;
      if (a.weight) v *= float(w.v[j]);
      if (a.bias) v += float(b.v[j]);
      o.v[j] = T(v);
    }
    store_pack<V>(a.y, first + p, o);
  });
}

// Accumulator slots hold a thread's elements in groups of G = kGroup (16 bytes of floats where a
// pack splits into them), lanes side by side, so that each group is one conflict-free vector
// access: the thread's group h, elements h·G .. h·G + G - 1 of its packs in turn, lies at slots
// (h·team + lane)·G + i.
template <int V>
constexpr int kGroup = V % 4 == 0 ? 4 : 1;

// Adds add[j] into the accumulator slots of element j of the thread's q-th pack.
template <int V>
__device__ __forceinline__ void accumulate(float* acc, int64_t q, int team, int lane, const float (&add)[V]) {
  constexpr int G = kGroup<V>;
  auto* groups = reinterpret_cast<Pack<float, G>*>(acc);
#pragma unroll
  for (int c = 0; c < V / G; ++c) {
    Pack<float, G>& slots = groups[(q * (V / G) + c) * team + lane];
    Pack<float, G> sum = slots;
#pragma unroll
    for (int i = 0; i < G; ++i) sum.v[i] += add[c * G + i];
    slots = sum;
  }
}

template <class T>
struct BackwardArgs {
  int64_t rows, d;
  int team, segments;
  int64_t rows_per_team, slots;
  const T* x;
  const T* weight;
  const float* mean;
  const float* rstd;
  const T* grad;
  const T* grad_extra;
  T* grad_x;                      // or null
  float* partial;                 // [chunks, stats, slots], or null without parameter gradients
  bool weight_grad, bias_grad;    // the stats: sums of g·xhat, then of g
  bool shared_acc, shared_weight, prefetch;
  bool x_is_xhat;                 // x holds xhat (an unweighted RMSNorm's output)
};

// With gw = g · weight and xhat = (x - mean) · rstd:
// dx = rstd · (gw - mean(gw) - xhat · mean(gw · xhat)) [+ extra]; RMSNorm has no mean(gw) term.
// The parameter gradients add g · xhat (weight) and g (bias) over the rows.
// PARAMS: parameter gradients are accumulated, a team taking rows_per_team rows. Without them the
// gradient of the sum (grad_extra) is loaded with x and g, so a row's loads all go out before its
// reduction (with them, where the weight comes from global memory, its registers would spill).
template <class T, int V, bool PARAMS>
__global__ void __launch_bounds__(kMaxRowThreads) backward_kernel(BackwardArgs<T> a) {
  extern __shared__ __align__(16) float shared_acc[];  // accumulators move as 16-byte groups
  const int lane = threadIdx.x % a.team, team = threadIdx.x / a.team, teams = blockDim.x / a.team;
  const int64_t packs = a.d / V;
  const int stats = int(a.weight_grad) + int(a.bias_grad);
  const int64_t team_slots = stats * a.slots;
  float* block_acc = a.shared_acc ? shared_acc : a.partial + blockIdx.x * team_slots;  // teams == 1 there
  // After the accumulators: 16-byte aligned, as slots come in multiples of kGroup<V> floats.
  T* shared_weight = reinterpret_cast<T*>(shared_acc + teams * team_slots);
  const T* weight = PARAMS && a.shared_weight ? shared_weight : a.weight;
  if (PARAMS) {
    for (int64_t i = threadIdx.x; i < teams * team_slots; i += blockDim.x) block_acc[i] = 0;
    for (int64_t p = threadIdx.x; a.shared_weight && p < packs; p += blockDim.x)
      store_pack<V>(shared_weight, p, load_pack<V>(a.weight, p));
    __syncthreads();
  }
  float* acc_w = PARAMS && a.weight_grad ? block_acc + team * team_slots : nullptr;
  float* acc_b = PARAMS && a.bias_grad ? block_acc + team * team_slots + (a.weight_grad ? a.slots : 0) : nullptr;
  auto row_of = [&](int64_t i) { return (int64_t(blockIdx.x) * a.rows_per_team + i) * teams + team; };
  // With a.prefetch: the team's next row, its x packs then its g packs, after the weight; each
  // thread copies and later reads only its own packs, so waiting for its own copies suffices.
  const bool prefetch = PARAMS && a.prefetch;
  Pack<T, V>* next = reinterpret_cast<Pack<T, V>*>(shared_weight + (a.shared_weight ? a.d : 0)) + team * 2 * packs;
  float next_mu = 0, next_rs = 0;
  auto fetch = [&](int64_t row) {
    next_mu = next_rs = 0;
    if (row < a.rows) {
#pragma unroll
      for (int k = 0; k < kCached; ++k) {
        const int64_t p = int64_t(k) * a.team + lane;
        if (p >= packs) continue;
        copy_async_16(next + p, a.x + (row * packs + p) * V, true);
        copy_async_16(next + packs + p, a.grad + (row * packs + p) * V, true);
      }
      next_mu = a.mean ? a.mean[row] : 0.0f;
      next_rs = a.rstd[row];
    }
    commit_copies();
  };
  if (prefetch) fetch(row_of(0));
  for (int64_t i = 0; i < a.rows_per_team; ++i) {
    const int64_t row = row_of(i), first = row * packs;
    const bool live = row < a.rows;  // a dead team still joins its block's team sums
    const float mu = live && a.mean && !prefetch ? a.mean[row] : next_mu;
    const float rs = live && !prefetch ? a.rstd[row] : next_rs;
    if (prefetch) wait_copies<0>();
    const float x_scale = a.x_is_xhat ? 1.0f : rs;  // xhat = (x - mu) * x_scale
    RowWalk walk{a.segments, lane, a.team, packs, live};
    Pack<T, V> x[kCached], g[kCached], e[PARAMS ? 1 : kCached];
    auto load = [&](int k, int64_t p, bool) {
      x[k] = prefetch ? next[p] : load_pack<V>(a.x, first + p);
      g[k] = prefetch ? next[packs + p] : load_pack<V>(a.grad, first + p);
      if (!PARAMS && a.grad_extra) e[k] = load_pack<V>(a.grad_extra, first + p);
    };
    // The next row's copies may overwrite the buffer once this row's values are in registers: after
    // the first walk over it, whose sums need them.
    bool fetched = !prefetch || i + 1 == a.rows_per_team;
    float mean_gw = 0, mean_gw_xhat = 0;
    if (a.grad_x) {
      float sum_gw = 0, sum_gw_xhat = 0;
      walk(load, [&](int k, int64_t p, int64_t) {
        Pack<T, V> w{};
        if (weight) w = load_pack<V>(weight, p);
#pragma unroll
        for (int j = 0; j < V; ++j) {
          const float gw = weight ? float(g[k].v[j]) * float(w.v[j]) : float(g[k].v[j]);
          sum_gw += gw;
          sum_gw_xhat += gw * ((float(x[k].v[j]) - mu) * x_scale);
        }
        keep_packed(x[k]);
        keep_packed(g[k]);
        if (!PARAMS) keep_packed(e[k]);
      });
      if (a.mean) mean_gw = team_sum(sum_gw, a.team) / float(a.d);
      mean_gw_xhat = team_sum(sum_gw_xhat, a.team) / float(a.d);
      if (!fetched) fetch(row_of(i + 1));
      fetched = true;
    }
    walk(load, [&](int k, int64_t p, int64_t q) {
      Pack<T, V> w{}, extra{}, o;
      if (weight) w = load_pack<V>(weight, p);
      if (a.grad_extra) extra = PARAMS ? load_pack<V>(a.grad_extra, first + p) : e[k];
      float g_xhat[V], gs[V];
#pragma unroll
      for (int j = 0; j < V; ++j) {
        const float gj = float(g[k].v[j]), xhat = (float(x[k].v[j]) - mu) * x_scale;
        const float gw = weight ? gj * float(w.v[j]) : gj;
        float dx = rs * (gw - mean_gw - xhat * mean_gw_xhat);
        if (a.grad_extra) dx += float(extra.v[j]);
        o.v[j] = T(dx);
        g_xhat[j] = gj * xhat;
        gs[j] = gj;
      }
      if (a.grad_x) store_pack<V>(a.grad_x, first + p, o);
      if (acc_w) accumulate<V>(acc_w, q, a.team, lane, g_xhat);
      if (acc_b) accumulate<V>(acc_b, q, a.team, lane, gs);
    });
    if (!fetched) fetch(row_of(i + 1));
  }
  if (!PARAMS || !a.shared_acc) return;
  __syncthreads();
  float* chunk = a.partial + blockIdx.x * team_slots;
  for (int64_t i = threadIdx.x; i < team_slots; i += blockDim.x) {
    float s = 0;
    for (int t = 0; t < teams; ++t) s += shared_acc[t * team_slots + i];
    chunk[i] = s;
  }
}

// A sum block: 8 slots (a 32-byte sector of each chunk) by 32 rows of threads, so that the
// chunks' small sum spreads over many SMs with several loads in flight per thread.
constexpr int kSumColumns = 8, kSumRows = 32;

// Where the slots of one parameter gradient lie in the partial buffer, and which column each holds.
template <class T>
struct SumArgs {
  int64_t chunks, stride, slots, packs;  // stride: floats from one chunk to the next
  int team;
  const float* partial;
  T* out;
};

// Block x sums slots [8 x, 8 x + 8) over the chunks: thread row y takes chunks y, y + 32, ...; then
// the first warp adds the 32 row sums of each slot, in four runs of 8 and those pairwise, and
// writes the slot's column (kGroup tells which).
template <class T, int V>
__global__ void sum_chunks_kernel(SumArgs<T> a) {
  constexpr int G = kGroup<V>;
  const int64_t slot = int64_t(blockIdx.x) * kSumColumns + threadIdx.x;
  float s = 0;
  if (slot < a.slots) {
#pragma unroll 8
    for (int64_t c = threadIdx.y; c < a.chunks; c += kSumRows) s += a.partial[c * a.stride + slot];
  }
  __shared__ float tile[kSumRows][kSumColumns];
  tile[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y >= 32 / kSumColumns) return;
  const int run = threadIdx.y;  // the first warp: lane = run * kSumColumns + column
  constexpr int kRun = kSumRows * kSumColumns / 32;
  float total = 0;
  for (int y = run * kRun; y < (run + 1) * kRun; ++y) total += tile[y][threadIdx.x];
  for (int step = kSumColumns; step < 32; step *= 2) total += __shfl_xor_sync(0xffffffffu, total, step);
  if (run != 0 || slot >= a.slots) return;
  const int64_t h = slot / G / a.team, lane = slot / G % a.team;  // the slot's group and thread
  const int64_t p = h * G / V * a.team + lane, j = h * G % V + slot % G;
  if (p < a.packs) a.out[p * V + j] = T(total);
}

template <class T, int V>
void launch_forward(const NormForward& a, int64_t rows, int64_t d) {
  const RowPlan plan = plan_rows(rows, d / V, V, 0);
  const ForwardArgs<T> args{rows,
                            d,
                            plan.team,
                            plan.segments,
                            a.x.data<T>(),
                            data_or_null<T>(a.residual),
                            data_or_null<T>(a.sum),
                            data_or_null<T>(a.weight),
                            data_or_null<T>(a.bias),
                            a.y.data<T>(),
                            data_or_null<float>(a.mean),
                            a.rstd.data<float>(),
                            static_cast<float>(a.eps)};
  forward_kernel<T, V><<<plan.blocks, plan.team * plan.teams, 0, stream_of(a.x)>>>(args);
  check_launch(a.op);
}

template <class T, int V>
void launch_backward(const NormBackward& a, int64_t rows, int64_t d) {
  const int stats = int(a.grad_weight.defined()) + int(a.grad_bias.defined());
  const int64_t weight_bytes = stats > 0 && a.weight.defined() ? d * int64_t(sizeof(T)) : 0;
  const RowPlan plan = plan_rows(rows, d / V, V, stats, weight_bytes, d * int64_t(sizeof(T)));
  const int64_t team_slots = stats * plan.slots;
  Tensor partial = stats > 0 ? Tensor::empty({plan.blocks * team_slots}, {DType::f32, a.x.device()}) : Tensor();
  cudaStream_t stream = stream_of(a.x);
  if (rows > 0 && (a.grad_x.defined() || stats > 0)) {
    const BackwardArgs<T> args{rows,
                               d,
                               plan.team,
                               plan.segments,
                               plan.rows_per_team,
                               plan.slots,
                               a.x.data<T>(),
                               data_or_null<T>(a.weight),
                               data_or_null<float>(a.mean),
                               a.rstd.data<float>(),
                               a.grad.data<T>(),
                               data_or_null<T>(a.grad_extra),
                               data_or_null<T>(a.grad_x),
                               data_or_null<float>(partial),
                               a.grad_weight.defined(),
                               a.grad_bias.defined(),
                               plan.shared_acc,
                               plan.shared_weight,
                               plan.prefetch,
                               a.x_is_xhat};
    const size_t shared = plan.shared_bytes;
    // Past 48 KiB of shared memory, its static part included, a kernel must ask for more; two blocks
    // per SM need the largest carveout.
    if (stats == 0) {
      backward_kernel<T, V, false><<<plan.blocks, plan.team * plan.teams, 0, stream>>>(args);
    } else {
      cudaFuncAttributes kernel{};
      cuda::check(cudaFuncGetAttributes(&kernel, backward_kernel<T, V, true>), a.op);
      if (shared > 0 && shared + kernel.sharedSizeBytes > 48 * 1024) {
        cuda::check(cudaFuncSetAttribute(backward_kernel<T, V, true>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(shared)),
                    a.op);
        cuda::check(cudaFuncSetAttribute(backward_kernel<T, V, true>, cudaFuncAttributePreferredSharedMemoryCarveout,
                                         cudaSharedmemCarveoutMaxShared),
                    a.op);
      }
      backward_kernel<T, V, true><<<plan.blocks, plan.team * plan.teams, shared, stream>>>(args);
    }
    check_launch(a.op);
  }
  int stat = 0;
  for (const Tensor* out : {&a.grad_weight, &a.grad_bias}) {
    if (!out->defined() || d == 0) continue;
    const SumArgs<T> args{rows > 0 ? plan.blocks : 0, team_slots, plan.slots, d / V, plan.team,
                          rows > 0 ? partial.data<float>() + stat * plan.slots : nullptr, out->data<T>()};
    ++stat;
    const unsigned tiles = static_cast<unsigned>(ceil_div(plan.slots, kSumColumns));
    sum_chunks_kernel<T, V><<<tiles, dim3(kSumColumns, kSumRows), 0, stream>>>(args);
    check_launch(a.op);
  }
}

}  // namespace

void norm_forward(const NormForward& a) {
  const int64_t d = a.x.shape().back(), rows = a.rstd.numel();
  if (rows == 0) return;
  visit_f32_bf16(a.x.dtype(), a.op, [&](auto tag) {
    using T = decltype(tag);
    constexpr int V = kPack<T>;
    if (packable(d, V, {&a.x, &a.y, &a.residual, &a.sum, &a.weight, &a.bias})) {
      launch_forward<T, V>(a, rows, d);
    } else {
      launch_forward<T, 1>(a, rows, d);
    }
  });
}

void norm_backward(const NormBackward& a) {
  PONDER_CHECK(!a.x_is_xhat || (!a.weight.defined() && !a.mean.defined()), ValueError, a.op,
               ": only an unweighted RMSNorm's output is its normalised input");
  const int64_t d = a.x.shape().back(), rows = a.rstd.numel();
  visit_f32_bf16(a.x.dtype(), a.op, [&](auto tag) {
    using T = decltype(tag);
    constexpr int V = kPack<T>;
    if (packable(d, V, {&a.x, &a.weight, &a.grad, &a.grad_extra, &a.grad_x})) {
      launch_backward<T, V>(a, rows, d);
    } else {
      launch_backward<T, 1>(a, rows, d);
    }
  });
}

}  // namespace ponder::kernels

namespace ponder::backend::cuda {

void rms_norm_forward(const Tensor& y, const Tensor& rstd, const Tensor& x, const Tensor& weight, double eps) {
  kernels::norm_forward({"rms_norm", y, Tensor(), rstd, x, Tensor(), Tensor(), weight, Tensor(), eps});
}

void rms_norm_backward(const Tensor& grad_x, const Tensor& grad_weight, const Tensor& grad, const Tensor& x,
                       const Tensor& weight, const Tensor& rstd, bool x_is_output) {
  kernels::norm_backward(
      {"rms_norm", grad_x, grad_weight, Tensor(), grad, Tensor(), x, weight, Tensor(), rstd, x_is_output});
}

void layer_norm_forward(const Tensor& y, const Tensor& mean, const Tensor& rstd, const Tensor& x, const Tensor& weight,
                        const Tensor& bias, double eps) {
  kernels::norm_forward({"layer_norm", y, mean, rstd, x, Tensor(), Tensor(), weight, bias, eps});
}

void layer_norm_backward(const Tensor& grad_x, const Tensor& grad_weight, const Tensor& grad_bias, const Tensor& grad,
                         const Tensor& x, const Tensor& weight, const Tensor& mean, const Tensor& rstd) {
  kernels::norm_backward({"layer_norm", grad_x, grad_weight, grad_bias, grad, Tensor(), x, weight, mean, rstd});
}

}  // namespace ponder::backend::cuda
