// FlashAttention-2 style bf16 kernels for head_dim 64 and 128: scores live only in registers (one
// tile at a time), tensor cores through mma.m16n8k16, K/V (or Q/dO) tiles double-buffered in shared
// memory with cp.async. Softmax statistics and all accumulators are f32.
//
// Every warp owns 16 rows of its CTA's block (queries in the forward and dQ kernels, keys in the
// dK/dV kernel); a thread holds rows g = lane / 4 and g + 8 of them (the C fragment layout).
// Scores are kept in log2 units, s * scale * log2(e), so exp2 does the softmax.
#pragma once

#include "kernels/attention_common.cuh"
#include "kernels/attention_mma.cuh"

namespace ponder::kernels::attention {

using mma::bits16;

// Tile geometry of one kernel instance: `WARPS` warps own the CTA's block, each warp MT m-tiles of 16
// consecutive rows; `TILE` is the size of the other operand's tiles that the CTA loops over.
template <int D, int WARPS, int MT, int TILE>
struct Geometry {
  static_assert(D % 16 == 0 && TILE % 16 == 0, "head_dim and tiles are multiples of 16");
  static constexpr int kDim = D, kWarps = WARPS, kMTiles = MT, kTile = TILE;
  static constexpr int kThreads = 32 * WARPS, kWarpRows = 16 * MT, kBlock = kWarpRows * WARPS;
  static constexpr int kLd = D + 8;  // padded row stride of shared tiles, in elements
};

// Starts copying `ROWS` rows of one head of a [tokens, heads, D] bf16 tensor, tokens [first,
// first + valid) (zeros for the rows past `valid`), into a shared tile.
template <int ROWS, int D, int THREADS>
__device__ __forceinline__ void load_rows(bits16* tile, const bits16* src, int64_t first, int valid, int heads,
                                          int head) {
  constexpr int kChunks = D / 8;  // 16-byte pieces of a row
  static_assert(ROWS * kChunks % THREADS == 0);
#pragma unroll
  for (int step = 0; step < ROWS * kChunks / THREADS; ++step) {
    const int c = threadIdx.x + step * THREADS;
    const int row = c / kChunks, chunk = c % kChunks;
    const bool ok = row < valid;
    const bits16* from = ok ? src + ((first + row) * heads + head) * D + chunk * 8 : src;
    mma::copy_async_16(tile + row * (D + 8) + chunk * 8, from, ok);
  }
}

// The row within the warp's rows of element e of m-tile m (C layout), and the column of element e
// of column tile nt within its tile.
__device__ __forceinline__ int fragment_row(int m, int e) { return m * 16 + (threadIdx.x % 32) / 4 + 8 * (e / 2); }
__device__ __forceinline__ int fragment_column(int nt, int e) { return nt * 8 + 2 * (threadIdx.x % 4) + (e & 1); }

// Stores a warp's accumulator rows (times factor[m][half]) as bf16 rows of one head of a [tokens,
// heads, D] tensor, the warp's first row at token `first`; rows at or past `valid` are skipped.
template <int MT, int D>
__device__ __forceinline__ void store_rows(bits16* dst, const float (&acc)[MT][D / 8][4],
                                           const float (&factor)[MT][2], int64_t first, int valid, int heads,
                                           int head) {
#pragma unroll
  for (int m = 0; m < MT; ++m) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int row = fragment_row(m, 2 * half);
      if (row >= valid) continue;
      auto* out = reinterpret_cast<uint32_t*>(dst + ((first + row) * heads + head) * D + fragment_column(0, 0));
      const float f = factor[m][half];
#pragma unroll
      for (int dt = 0; dt < D / 8; ++dt) {
        out[dt * 4] = mma::pack_bf16(acc[m][dt][2 * half] * f, acc[m][dt][2 * half + 1] * f);
      }
    }
  }
}

// ---- forward ----------------------------------------------------------------------------------

// One CTA: a block of kBlock queries of one head and sample, looping over the key tiles they can see.
template <class G>
__global__ void __launch_bounds__(G::kThreads) flash_forward(ForwardParams p) {
  constexpr int D = G::kDim, MT = G::kMTiles, BR = G::kBlock, BC = G::kTile, LD = G::kLd;
  extern __shared__ __align__(16) bits16 smem[];
  bits16* sq = smem;              // [BR][LD]
  bits16* sk = sq + BR * LD;      // [2][BC][LD]
  bits16* sv = sk + 2 * BC * LD;  // [2][BC][LD]

  // Heads vary fastest (a GQA group's CTAs share K/V in L2); slots run backwards so the longest
  // blocks (the last ones of causal samples) start first.
  const int head = blockIdx.x % p.q_heads, kv_head = head / p.group;
  const int64_t slots = gridDim.x / p.q_heads, slot = slots - 1 - blockIdx.x / p.q_heads;
  const SampleBlock b = locate_block(p, slot, BR);
  if (!b.active) return;
  const int q0 = b.start, valid_q = b.len - q0, warp_row0 = (threadIdx.x / 32) * G::kWarpRows;
  const auto* k = static_cast<const bits16*>(p.k);
  const auto* v = static_cast<const bits16*>(p.v);

  // Keys [0, kv_end) are seen by some query of the block; the first `open` are seen by all of them.
  const int kv_end = visible_keys(p.mask, min(q0 + BR, b.len) - 1, b.len, b.prefix);
  const int open = visible_keys(p.mask, q0, b.len, b.prefix);
  const int tiles = (kv_end + BC - 1) / BC;
  auto load_kv = [&](int t, int buffer) {
    load_rows<BC, D, G::kThreads>(sk + buffer * BC * LD, k, b.begin + t * BC, b.len - t * BC, p.kv_heads, kv_head);
    load_rows<BC, D, G::kThreads>(sv + buffer * BC * LD, v, b.begin + t * BC, b.len - t * BC, p.kv_heads, kv_head);
  };
  load_rows<BR, D, G::kThreads>(sq, static_cast<const bits16*>(p.q), b.begin + q0, valid_q, p.q_heads, head);
  load_kv(0, 0);
  mma::commit_copies();

  // Rows past the sample are zero queries: finite scores, never stored.
  int visible[MT][2];
  float o[MT][D / 8][4], row_max[MT][2], row_sum[MT][2];
#pragma unroll
  for (int m = 0; m < MT; ++m) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      visible[m][half] = visible_keys(p.mask, q0 + warp_row0 + fragment_row(m, 2 * half), b.len, b.prefix);
      row_max[m][half] = -INFINITY;
      row_sum[m][half] = 0.f;
    }
  }
  mma::zero(o);
  const float scale_log2 = p.scale * kLog2e;
  const mma::SharedA q_rows{sq + warp_row0 * LD, LD};

  for (int t = 0; t < tiles; ++t) {
    const int buffer = t % 2;
    if (t + 1 < tiles) {
      load_kv(t + 1, 1 - buffer);
      mma::commit_copies();
      mma::wait_copies<1>();
    } else {
      mma::wait_copies<0>();
    }
    __syncthreads();
    float s[MT][BC / 8][4];
    mma::zero(s);
    mma::gemm_a_yt<MT, D, BC>(s, q_rows, sk + buffer * BC * LD, LD);

    const int k0 = t * BC;
    const bool masked = k0 + BC > open;
#pragma unroll
    for (int m = 0; m < MT; ++m) {
#pragma unroll
      for (int nt = 0; nt < BC / 8; ++nt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          s[m][nt][e] *= scale_log2;
          if (masked && k0 + fragment_column(nt, e) >= visible[m][e / 2]) s[m][nt][e] = -INFINITY;
        }
      }
    }
    // Online softmax: key 0 is visible to every row, so the running max is finite from tile 0 on.
#pragma unroll
    for (int m = 0; m < MT; ++m) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        float tile_max = -INFINITY;
#pragma unroll
        for (int nt = 0; nt < BC / 8; ++nt) {
          tile_max = fmaxf(tile_max, fmaxf(s[m][nt][2 * half], s[m][nt][2 * half + 1]));
        }
        tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
        tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 2));
        const float new_max = fmaxf(row_max[m][half], tile_max);
        const float rescale = exp2f(row_max[m][half] - new_max);
        row_max[m][half] = new_max;
        row_sum[m][half] *= rescale;
#pragma unroll
        for (int dt = 0; dt < D / 8; ++dt) {
          o[m][dt][2 * half] *= rescale;
          o[m][dt][2 * half + 1] *= rescale;
        }
#pragma unroll
        for (int nt = 0; nt < BC / 8; ++nt) {
          s[m][nt][2 * half] = exp2f(s[m][nt][2 * half] - new_max);
          s[m][nt][2 * half + 1] = exp2f(s[m][nt][2 * half + 1] - new_max);
          row_sum[m][half] += s[m][nt][2 * half] + s[m][nt][2 * half + 1];
        }
      }
    }
    mma::gemm_a_y<MT, BC, D>(o, mma::RegisterA<MT, BC>{s}, sv + buffer * BC * LD, LD);
    __syncthreads();  // the next iteration refills the other buffer
  }

  float inverse[MT][2];
#pragma unroll
  for (int m = 0; m < MT; ++m) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float& sum = row_sum[m][half];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      inverse[m][half] = 1.f / sum;
      const int row = warp_row0 + fragment_row(m, 2 * half);
      if (threadIdx.x % 4 == 0 && row < valid_q) {
        p.lse[head * p.tokens + b.begin + q0 + row] = (row_max[m][half] + log2f(sum)) * kLn2;
      }
    }
  }
  store_rows<MT, D>(static_cast<bits16*>(p.out), o, inverse, b.begin + q0 + warp_row0, valid_q - warp_row0,
                    p.q_heads, head);
}

// ---- backward ---------------------------------------------------------------------------------
// With P = exp(scale S - lse), D_i = rowsum(dO_i * O_i) and dS = P * (dO V^T - D):
// dV = P^T dO, dK = scale dS^T Q, dQ = scale dS K. Two ways to get dQ:
// - single pass (default): the dK/dV kernel also computes dS K for its key block and adds it into an
//   f32 dQ sum with atomics (5 tile products per (query tile, key block) instead of 7, but the
//   order of the additions varies run to run);
// - deterministic: a second kernel per query block recomputes S, P and dP and owns its dQ rows.

// dQ for a block of kBlock queries of one head and sample, looping over the key tiles they see.
template <class G>
__global__ void __launch_bounds__(G::kThreads) flash_backward_dq(BackwardParams p) {
  constexpr int D = G::kDim, MT = G::kMTiles, BR = G::kBlock, BC = G::kTile, LD = G::kLd;
  extern __shared__ __align__(16) bits16 smem[];
  bits16* sq = smem;              // [BR][LD]
  bits16* sdo = sq + BR * LD;     // [BR][LD]
  bits16* sk = sdo + BR * LD;     // [2][BC][LD]
  bits16* sv = sk + 2 * BC * LD;  // [2][BC][LD]

  const int head = blockIdx.x % p.q_heads, kv_head = head / p.group;
  const int64_t slots = gridDim.x / p.q_heads, slot = slots - 1 - blockIdx.x / p.q_heads;
  const SampleBlock b = locate_block(p, slot, BR);
  if (!b.active) return;
  const int q0 = b.start, valid_q = b.len - q0, warp_row0 = (threadIdx.x / 32) * G::kWarpRows;
  const auto* k = static_cast<const bits16*>(p.k);
  const auto* v = static_cast<const bits16*>(p.v);

  const int kv_end = visible_keys(p.mask, min(q0 + BR, b.len) - 1, b.len, b.prefix);
  const int open = visible_keys(p.mask, q0, b.len, b.prefix);
  const int tiles = (kv_end + BC - 1) / BC;
  auto load_kv = [&](int t, int buffer) {
    load_rows<BC, D, G::kThreads>(sk + buffer * BC * LD, k, b.begin + t * BC, b.len - t * BC, p.kv_heads, kv_head);
    load_rows<BC, D, G::kThreads>(sv + buffer * BC * LD, v, b.begin + t * BC, b.len - t * BC, p.kv_heads, kv_head);
  };
  load_rows<BR, D, G::kThreads>(sq, static_cast<const bits16*>(p.q), b.begin + q0, valid_q, p.q_heads, head);
  load_rows<BR, D, G::kThreads>(sdo, static_cast<const bits16*>(p.grad_out), b.begin + q0, valid_q, p.q_heads, head);
  load_kv(0, 0);
  mma::commit_copies();

  // Per row: visible keys, lse in log2 units and D. Rows past the sample get lse = +inf, so P = 0.
  int visible[MT][2];
  float lse2[MT][2], delta[MT][2];
#pragma unroll
  for (int m = 0; m < MT; ++m) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int i = q0 + warp_row0 + fragment_row(m, 2 * half);
      const int64_t at = head * p.tokens + b.begin + i;
      visible[m][half] = visible_keys(p.mask, i, b.len, b.prefix);
      lse2[m][half] = i < b.len ? p.lse[at] * kLog2e : INFINITY;
      delta[m][half] = i < b.len ? p.delta[at] : 0.f;
    }
  }
  const float scale_log2 = p.scale * kLog2e;
  float dq[MT][D / 8][4];
  mma::zero(dq);

  for (int t = 0; t < tiles; ++t) {
    const int buffer = t % 2;
    if (t + 1 < tiles) {
      load_kv(t + 1, 1 - buffer);
      mma::commit_copies();
      mma::wait_copies<1>();
    } else {
      mma::wait_copies<0>();
    }
    __syncthreads();
    const bits16* k_tile = sk + buffer * BC * LD;
    float s[MT][BC / 8][4], dp[MT][BC / 8][4];
    mma::zero(s);
    mma::zero(dp);
    mma::gemm_a_yt<MT, D, BC>(s, mma::SharedA{sq + warp_row0 * LD, LD}, k_tile, LD);
    mma::gemm_a_yt<MT, D, BC>(dp, mma::SharedA{sdo + warp_row0 * LD, LD}, sv + buffer * BC * LD, LD);
    const int k0 = t * BC;
    const bool masked = k0 + BC > open;
#pragma unroll
    for (int m = 0; m < MT; ++m) {
#pragma unroll
      for (int nt = 0; nt < BC / 8; ++nt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          float prob = exp2f(fmaf(s[m][nt][e], scale_log2, -lse2[m][e / 2]));
          if (masked && k0 + fragment_column(nt, e) >= visible[m][e / 2]) prob = 0.f;
          s[m][nt][e] = prob * (dp[m][nt][e] - delta[m][e / 2]);  // dS
        }
      }
    }
    mma::gemm_a_y<MT, BC, D>(dq, mma::RegisterA<MT, BC>{s}, k_tile, LD);
    __syncthreads();
  }
  float factor[MT][2];
#pragma unroll
  for (int m = 0; m < MT; ++m) factor[m][0] = factor[m][1] = p.scale;
  store_rows<MT, D>(static_cast<bits16*>(p.dq), dq, factor, b.begin + q0 + warp_row0, valid_q - warp_row0,
                    p.q_heads, head);
}

// Writes a warp's accumulator rows as bf16 into a shared tile (row stride `ld`), its first row at `tile`.
template <int MT, int N>
__device__ __forceinline__ void store_shared_rows(bits16* tile, const float (&acc)[MT][N / 8][4], int ld) {
#pragma unroll
  for (int m = 0; m < MT; ++m) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      auto* out = reinterpret_cast<uint32_t*>(tile + fragment_row(m, 2 * half) * ld + fragment_column(0, 0));
#pragma unroll
      for (int nt = 0; nt < N / 8; ++nt) out[nt * 4] = mma::pack_bf16(acc[m][nt][2 * half], acc[m][nt][2 * half + 1]);
    }
  }
}

// Stride of the dS^T tile of the single-pass backward: [kBlock keys][kTile queries], padded like the others.
template <class G>
constexpr int ds_ld() {
  return G::kTile + 8;
}

// The single-pass backward's dQ step for one query tile [q0, q0 + kTile) of `head`: dq_sum += dS K
// over this CTA's key block, dS read from the dS^T tile `ds_t` the warps wrote, K from `k_block`.
// Each warp owns kTile / kWarps queries and walks head_dim in chunks, adding each chunk to dq_sum
// as soon as it is done: a whole dQ tile would not fit in registers next to dK and dV.
template <class G>
__device__ __forceinline__ void add_dq_tile(const BackwardParams& p, const bits16* ds_t, const bits16* k_block,
                                            const SampleBlock& b, int q0, int head) {
  constexpr int D = G::kDim, BC = G::kBlock, BR = G::kTile, LD = G::kLd;
  constexpr int QT = BR / (16 * G::kWarps);  // m-tiles of queries per warp
  constexpr int CHUNK = 64;                  // head_dim columns per pass (32 spills more at D = 128)
  static_assert(BR % (16 * G::kWarps) == 0 && D % CHUNK == 0);
  const int warp_q0 = (threadIdx.x / 32) * 16 * QT;
#pragma unroll
  for (int c0 = 0; c0 < D; c0 += CHUNK) {
    float acc[QT][CHUNK / 8][4];
    mma::zero(acc);
    mma::gemm_a_y<QT, BC, CHUNK>(acc, mma::SharedAT{ds_t + warp_q0, ds_ld<G>()}, k_block + c0, LD);
#pragma unroll
    for (int m = 0; m < QT; ++m) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int i = q0 + warp_q0 + fragment_row(m, 2 * half);
        if (i >= b.len) continue;
        float* row = p.dq_sum + ((b.begin + i) * p.q_heads + head) * D + c0;
#pragma unroll
        for (int nt = 0; nt < CHUNK / 8; ++nt) {
          mma::add_pair(row + fragment_column(nt, 0), acc[m][nt][2 * half], acc[m][nt][2 * half + 1]);
        }
      }
    }
  }
}

// dK and dV for a block of kBlock keys of one kv head and sample, looping over the query heads of
// its GQA group and, for each, over the query tiles that see any of the keys. With SINGLE_PASS it
// also adds each tile's dS K into p.dq_sum (see above).
template <class G, bool SINGLE_PASS>
__global__ void __launch_bounds__(G::kThreads) flash_backward_dkdv(BackwardParams p) {
  constexpr int D = G::kDim, MT = G::kMTiles, BC = G::kBlock, BR = G::kTile, LD = G::kLd;
  extern __shared__ __align__(16) bits16 smem[];
  bits16* sk = smem;               // [BC][LD]
  bits16* sv = sk + BC * LD;       // [BC][LD]
  bits16* sq = sv + BC * LD;       // [2][BR][LD]
  bits16* sdo = sq + 2 * BR * LD;  // [2][BR][LD]
  float* slse = reinterpret_cast<float*>(sdo + 2 * BR * LD);  // [2][BR], log2 units
  float* sdelta = slse + 2 * BR;                               // [2][BR]
  bits16* sds = reinterpret_cast<bits16*>(sdelta + 2 * BR);    // [BC][ds_ld], single pass only

  // Slots run forwards: under causal masks the first key blocks of a sample have the most queries.
  const int kv_head = blockIdx.x % p.kv_heads;
  const int64_t slot = blockIdx.x / p.kv_heads;
  const SampleBlock b = locate_block(p, slot, BC);
  if (!b.active) return;
  const int k0 = b.start, valid_k = b.len - k0, warp_row0 = (threadIdx.x / 32) * G::kWarpRows;
  const auto* q = static_cast<const bits16*>(p.q);
  const auto* grad_out = static_cast<const bits16*>(p.grad_out);

  // Work items: (query head of the group, query tile from the first query that sees a key here).
  const int first = first_query(p.mask, k0, b.prefix);
  const int q_tiles = (b.len - first + BR - 1) / BR, items = p.group * q_tiles;
  auto load_item = [&](int item, int buffer) {
    const int head = kv_head * p.group + item / q_tiles, q0 = first + (item % q_tiles) * BR;
    load_rows<BR, D, G::kThreads>(sq + buffer * BR * LD, q, b.begin + q0, b.len - q0, p.q_heads, head);
    load_rows<BR, D, G::kThreads>(sdo + buffer * BR * LD, grad_out, b.begin + q0, b.len - q0, p.q_heads, head);
    // Queries past the sample get lse = +inf (P = 0) and D = 0, so they add nothing.
    for (int c = threadIdx.x; c < BR; c += G::kThreads) {
      const int i = q0 + c;
      const int64_t at = head * p.tokens + b.begin + i;
      slse[buffer * BR + c] = i < b.len ? p.lse[at] * kLog2e : INFINITY;
      sdelta[buffer * BR + c] = i < b.len ? p.delta[at] : 0.f;
    }
  };
  load_rows<BC, D, G::kThreads>(sk, static_cast<const bits16*>(p.k), b.begin + k0, valid_k, p.kv_heads, kv_head);
  load_rows<BC, D, G::kThreads>(sv, static_cast<const bits16*>(p.v), b.begin + k0, valid_k, p.kv_heads, kv_head);
  load_item(0, 0);
  mma::commit_copies();

  int key[MT][2];
#pragma unroll
  for (int m = 0; m < MT; ++m) {
#pragma unroll
    for (int half = 0; half < 2; ++half) key[m][half] = k0 + warp_row0 + fragment_row(m, 2 * half);
  }
  const float scale_log2 = p.scale * kLog2e;
  const mma::SharedA k_rows{sk + warp_row0 * LD, LD}, v_rows{sv + warp_row0 * LD, LD};
  float dk[MT][D / 8][4], dv[MT][D / 8][4];
  mma::zero(dk);
  mma::zero(dv);

  for (int item = 0; item < items; ++item) {
    const int buffer = item % 2;
    if (item + 1 < items) {
      load_item(item + 1, 1 - buffer);
      mma::commit_copies();
      mma::wait_copies<1>();
    } else {
      mma::wait_copies<0>();
    }
    __syncthreads();
    const int q0 = first + (item % q_tiles) * BR;
    const bits16* q_tile = sq + buffer * BR * LD;
    const bits16* do_tile = sdo + buffer * BR * LD;
    const float* lse2 = slse + buffer * BR;
    const float* delta = sdelta + buffer * BR;
    // Past this point every query of the tile sees every key of the block.
    const bool masked = visible_keys(p.mask, q0, b.len, b.prefix) < k0 + BC;

    float pt[MT][BR / 8][4];  // P^T: rows are this warp's keys, columns the tile's queries
    mma::zero(pt);
    mma::gemm_a_yt<MT, D, BR>(pt, k_rows, q_tile, LD);
#pragma unroll
    for (int m = 0; m < MT; ++m) {
#pragma unroll
      for (int nt = 0; nt < BR / 8; ++nt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int c = fragment_column(nt, e);
          float prob = exp2f(fmaf(pt[m][nt][e], scale_log2, -lse2[c]));
          if (masked && key[m][e / 2] >= visible_keys(p.mask, q0 + c, b.len, b.prefix)) prob = 0.f;
          pt[m][nt][e] = prob;
        }
      }
    }
    mma::gemm_a_y<MT, BR, D>(dv, mma::RegisterA<MT, BR>{pt}, do_tile, LD);

    float dst[MT][BR / 8][4];  // dP^T, then dS^T
    mma::zero(dst);
    mma::gemm_a_yt<MT, D, BR>(dst, v_rows, do_tile, LD);
#pragma unroll
    for (int m = 0; m < MT; ++m) {
#pragma unroll
      for (int nt = 0; nt < BR / 8; ++nt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          dst[m][nt][e] = pt[m][nt][e] * (dst[m][nt][e] - delta[fragment_column(nt, e)]);
        }
      }
    }
    if constexpr (SINGLE_PASS) store_shared_rows<MT, BR>(sds + warp_row0 * ds_ld<G>(), dst, ds_ld<G>());
    mma::gemm_a_y<MT, BR, D>(dk, mma::RegisterA<MT, BR>{dst}, q_tile, LD);
    if constexpr (SINGLE_PASS) {
      __syncthreads();  // every warp's dS^T rows are in place
      add_dq_tile<G>(p, sds, sk, b, q0, kv_head * p.group + item / q_tiles);
    }
    __syncthreads();
  }
  float dk_factor[MT][2], dv_factor[MT][2];
#pragma unroll
  for (int m = 0; m < MT; ++m) {
    dk_factor[m][0] = dk_factor[m][1] = p.scale;
    dv_factor[m][0] = dv_factor[m][1] = 1.f;
  }
  const int64_t first_key = b.begin + k0 + warp_row0;
  store_rows<MT, D>(static_cast<bits16*>(p.dk), dk, dk_factor, first_key, valid_k - warp_row0, p.kv_heads, kv_head);
  store_rows<MT, D>(static_cast<bits16*>(p.dv), dv, dv_factor, first_key, valid_k - warp_row0, p.kv_heads, kv_head);
}

// Dynamic shared memory of each kernel, in bytes.
template <class G>
constexpr int forward_shared_bytes() {
  return (G::kBlock + 4 * G::kTile) * G::kLd * 2;
}
template <class G>
constexpr int dq_shared_bytes() {
  return (2 * G::kBlock + 4 * G::kTile) * G::kLd * 2;
}
template <class G, bool SINGLE_PASS>
constexpr int dkdv_shared_bytes() {
  const int ds_tile = SINGLE_PASS ? G::kBlock * ds_ld<G>() * 2 : 0;
  return (2 * G::kBlock + 4 * G::kTile) * G::kLd * 2 + 4 * G::kTile * 4 + ds_tile;
}

}  // namespace ponder::kernels::attention
