// Hopper (sm_90a) attention for head_dim 128. Forward: the FlashAttention-2 algorithm of
// attention_flash.cuh with both products on warpgroup tensor cores (wgmma). A CTA of two warpgroups
// owns 128 queries of one head and sample (64 per warpgroup); the TMA unit copies Q and the K and V
// tiles of 128 keys (three buffers deep, 128-byte-swizzled shared memory), each copy completing on
// a barrier the warpgroups wait on, and each warpgroup hands a buffer back on a second barrier once
// its products have read it: no block-wide synchronisation per tile. (A producer warp of its own,
// as in FlashAttention-3, would leave the warpgroups 168 registers a thread: a ninth warp makes one
// SM sub-partition hold three.) S = Q K^T reads Q and K from shared memory; P stays in registers as
// the A operand of O += P V, V read MN-major. Scores are in log2 units.
#pragma once

#include "kernels/attention_common.cuh"
#include "kernels/attention_flash.cuh"
#include "kernels/tma.cuh"
#include "kernels/wgmma.cuh"

namespace ponder::kernels::attention {

struct HopperForward {
  static constexpr int kDim = 128, kGroups = 2, kThreads = kGroups * wgmma::kGroupThreads;
  static constexpr int kBlock = 64 * kGroups, kTile = 128, kStages = 3;
  // Q, then the K and the V buffers, their barriers (Q full; K and V full and empty per stage), plus
  // slack to align the start to a swizzle atom.
  static constexpr int kBarriers = 1 + 4 * kStages;
  static constexpr int kSharedBytes = (kBlock + 2 * kStages * kTile) * kDim * 2 + kBarriers * 8 + wgmma::kAtomBytes;
  // MN-major V (PTX ISA matrix descriptor, swizzled MN-major): the leading offset steps between
  // 64-column panels along N, the stride offset between 8-row atoms along K.
  static constexpr uint32_t kVLeading = kTile * wgmma::kPanel * 2, kVStride = wgmma::kAtomBytes;
};

// TMA maps of q, k and v ([tokens, heads, 128] bf16): boxes of 64 columns x 1 head x 128 tokens,
// 128-byte swizzled (wgmma.cuh's panel layout); tokens past the tensor read as zeros.
struct ForwardMaps {
  CUtensorMap q, k, v;
};

__device__ __forceinline__ bits16* atom_aligned(void* p) {
  const auto at = reinterpret_cast<uintptr_t>(p);
  return reinterpret_cast<bits16*>((at + wgmma::kAtomBytes - 1) & ~uintptr_t(wgmma::kAtomBytes - 1));
}

// The bf16 A fragments of P for O += P V: key step j is score column tiles 2j and 2j + 1.
template <int T>
__device__ __forceinline__ void probabilities_as_a(uint32_t (&a)[T / 2][4], const float (&s)[T][4]) {
#pragma unroll
  for (int j = 0; j < T / 2; ++j) {
    a[j][0] = mma::pack_bf16(s[2 * j][0], s[2 * j][1]);
    a[j][1] = mma::pack_bf16(s[2 * j][2], s[2 * j][3]);
    a[j][2] = mma::pack_bf16(s[2 * j + 1][0], s[2 * j + 1][1]);
    a[j][3] = mma::pack_bf16(s[2 * j + 1][2], s[2 * j + 1][3]);
  }
}

// One warpgroup's online-softmax state for its two rows per thread (g and g + 8 of the warp's 16),
// over key tiles of 8 T keys. The maxima are kept in log2 units (raw score x scale_log2); a tile's
// raw scores are scaled inside the exponent's FMA, since scale_log2 > 0 commutes with the max.
template <int T>
struct SoftmaxRows {
  int visible[2];
  float max[2], sum[2];

  // Masks a tile of raw scores s (keys k0..), turns it into probabilities against the new running
  // maxima and returns in `rescale` the factor by which earlier sums shrink.
  __device__ __forceinline__ void absorb(float (&s)[T][4], int k0, bool masked, float scale_log2,
                                         float (&rescale)[2]) {
    if (masked) {
#pragma unroll
      for (int nt = 0; nt < T; ++nt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          if (k0 + fragment_column(nt, e) >= visible[e / 2]) s[nt][e] = -INFINITY;
        }
      }
    }
    // Key 0 is visible to every row, so the running max is finite from the first tile on.
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float tile_max = -INFINITY;
#pragma unroll
      for (int nt = 0; nt < T; ++nt) tile_max = fmaxf(tile_max, fmaxf(s[nt][2 * half], s[nt][2 * half + 1]));
      tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
      tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 2));
      const float new_max = fmaxf(max[half], tile_max * scale_log2);
      rescale[half] = exp2f(max[half] - new_max);
      max[half] = new_max;
      float tile_sum = 0.f;
#pragma unroll
      for (int nt = 0; nt < T; ++nt) {
        s[nt][2 * half] = exp2f(fmaf(s[nt][2 * half], scale_log2, -new_max));
        s[nt][2 * half + 1] = exp2f(fmaf(s[nt][2 * half + 1], scale_log2, -new_max));
        tile_sum += s[nt][2 * half] + s[nt][2 * half + 1];
      }
      sum[half] = sum[half] * rescale[half] + tile_sum;
    }
  }
};

// Copies ROWS tokens from `first` of one head into a swizzled [ROWS][128] tile: two boxes of 64 columns.
template <int ROWS>
__device__ __forceinline__ void load_tile(bits16* tile, const CUtensorMap* map, int head, int64_t first,
                                          uint64_t* full) {
  tma::arrive_expecting(full, ROWS * 128 * 2);
  for (int panel = 0; panel < 2; ++panel) {
    tma::load_box(tile + panel * ROWS * wgmma::kPanel, map, panel * wgmma::kPanel, head, static_cast<int>(first),
                  full);
  }
}

// Per key tile t (K_t and V_t in buffer t % 3): issue S_t = Q K_t, then O += P_{t-1} V_{t-1}; wait
// for S_t only (K_t's buffer goes back); softmax of S_t while the P V product runs; then wait for it
// (V_{t-1}'s buffer goes back) and rescale O. Iteration t needs K_t and V_{t-1}; at its top thread 0
// starts copying K_{t+2} and V_{t+1} into the buffers of K_{t-1} and V_{t-2} once both warpgroups
// have handed those back, so each copy has two iterations to land. Rows past the sample (the last
// tiles of Q, K and V) are read from the next sample, or as zeros past the tensor: masked keys get
// probability 0 and queries past the sample are never stored.
template <class G>
__global__ void __launch_bounds__(G::kThreads) hopper_forward(const ForwardParams p,
                                                             const __grid_constant__ ForwardMaps maps) {
#ifdef PONDER_WGMMA_AVAILABLE
  constexpr int D = G::kDim, BR = G::kBlock, BC = G::kTile, S = G::kStages;
  extern __shared__ char shared_raw[];
  bits16* sq = atom_aligned(shared_raw);  // [BR][D] swizzled
  bits16* sk = sq + BR * D;               // [stages][BC][D]
  bits16* sv = sk + S * BC * D;           // [stages][BC][D]
  uint64_t* q_full = reinterpret_cast<uint64_t*>(sv + S * BC * D);
  uint64_t *k_full = q_full + 1, *k_empty = k_full + S, *v_full = k_empty + S, *v_empty = v_full + S;

  const int head = blockIdx.x % p.q_heads, kv_head = head / p.group;
  const int64_t slots = gridDim.x / p.q_heads, slot = slots - 1 - blockIdx.x / p.q_heads;
  const SampleBlock b = locate_block(p, slot, BR);
  if (!b.active) return;
  const int q0 = b.start, valid_q = b.len - q0;
  const int kv_end = visible_keys(p.mask, min(q0 + BR, b.len) - 1, b.len, b.prefix);
  const int open = visible_keys(p.mask, q0, b.len, b.prefix);
  const int tiles = (kv_end + BC - 1) / BC;

  if (threadIdx.x == 0) {
    tma::init(q_full, 1);
    for (int s = 0; s < S; ++s) {
      tma::init(k_full + s, 1);
      tma::init(v_full + s, 1);
      tma::init(k_empty + s, G::kThreads);
      tma::init(v_empty + s, G::kThreads);
    }
    tma::fence_init();
  }
  __syncthreads();
  // Thread 0: tile t of K or V into its buffer, once the buffer's previous tile is handed back.
  auto load_kv = [&](const CUtensorMap* map, bits16* buffers, uint64_t* full, uint64_t* empty, int t) {
    if (t >= tiles) return;
    const int stage = t % S, use = t / S;
    if (use > 0) tma::wait(empty + stage, (use - 1) & 1);
    load_tile<BC>(buffers + stage * BC * D, map, kv_head, b.begin + int64_t(t) * BC, full + stage);
  };
  if (threadIdx.x == 0) {
    load_tile<BR>(sq, &maps.q, head, b.begin + q0, q_full);
    load_kv(&maps.k, sk, k_full, k_empty, 0);
    load_kv(&maps.k, sk, k_full, k_empty, 1);
    load_kv(&maps.v, sv, v_full, v_empty, 0);
  }

  const int group_row0 = (threadIdx.x / wgmma::kGroupThreads) * 64;
  const int warp_row0 = group_row0 + (threadIdx.x / 32) % 4 * 16;
  SoftmaxRows<BC / 8> rows;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    rows.visible[half] = visible_keys(p.mask, q0 + warp_row0 + fragment_row(0, 2 * half), b.len, b.prefix);
    rows.max[half] = -INFINITY;
    rows.sum[half] = 0.f;
  }
  float o[1][D / 8][4];
  mma::zero(o);
  uint32_t pa[BC / 16][4];  // P of the previous tile, the A operand of O += P V
  const float scale_log2 = p.scale * kLog2e;
  auto accumulate_pv = [&](int t) {
    const int stage = t % S;
    tma::wait(v_full + stage, (t / S) & 1);
    const bits16* v_tile = sv + stage * BC * D;
#pragma unroll
    for (int j = 0; j < BC / 16; ++j) {
      wgmma::mma_rs<1>(o[0], pa[j], wgmma::mn_major(v_tile, BC, j, G::kVLeading, G::kVStride), true);
    }
    wgmma::commit();
  };

  tma::wait(q_full, 0);
  for (int t = 0; t < tiles; ++t) {
    if (threadIdx.x == 0) {
      load_kv(&maps.k, sk, k_full, k_empty, t + 2);
      load_kv(&maps.v, sv, v_full, v_empty, t + 1);
    }
    const int stage = t % S;
    tma::wait(k_full + stage, (t / S) & 1);
    float s[BC / 8][4];
    const bits16* k_tile = sk + stage * BC * D;
    wgmma::hold(o[0]);
    wgmma::fence();
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks) {
      wgmma::mma_ss<0, 0>(s, wgmma::k_major(sq, BR, group_row0, ks), wgmma::k_major(k_tile, BC, 0, ks), ks > 0);
    }
    wgmma::commit();
    if (t > 0) {
      accumulate_pv(t - 1);
      wgmma::wait<1>();
    } else {
      wgmma::wait<0>();
    }
    tma::arrive(k_empty + stage);
    wgmma::hold(s);
    float rescale[2];
    rows.absorb(s, t * BC, t * BC + BC > open, scale_log2, rescale);
    wgmma::wait<0>();
    wgmma::hold(o[0]);
    if (t > 0) tma::arrive(v_empty + (t - 1) % S);
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) o[0][dt][e] *= rescale[e / 2];
    }
    probabilities_as_a(pa, s);
  }
  wgmma::hold(o[0]);
  wgmma::fence();
  accumulate_pv(tiles - 1);
  wgmma::wait<0>();
  wgmma::hold(o[0]);

  float inverse[1][2];
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    float& sum = rows.sum[half];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    inverse[0][half] = 1.f / sum;
    const int row = warp_row0 + fragment_row(0, 2 * half);
    if (threadIdx.x % 4 == 0 && row < valid_q) {
      p.lse[head * p.tokens + b.begin + q0 + row] = (rows.max[half] + log2f(sum)) * kLn2;
    }
  }
  store_rows<1, D>(static_cast<bits16*>(p.out), o, inverse, b.begin + q0 + warp_row0, valid_q - warp_row0,
                   p.q_heads, head);
#endif
}

// ---- backward ----------------------------------------------------------------------------------
// The single-pass backward of attention_flash.cuh on warpgroup tensor cores. A CTA of two
// warpgroups owns 128 keys of one kv head and sample (64 per warpgroup) and loops over the query
// tiles of 64 that see them (every query head of the GQA group). The TMA unit copies K and V once
// and each tile's Q and dO (three buffers deep; the tile's lse and delta are written next to them),
// each copy completing on a barrier the warpgroups wait on. Per tile, each warpgroup forms
// S^T = K Q^T and dP^T = V dO^T for its keys (both operands K-major in shared memory), turns them
// into P^T and dS^T in registers, and adds dV += P^T dO and dK += dS^T Q (register A operands, dO
// and Q read MN-major). dS^T goes to shared memory for dQ = dS K, which the two warpgroups split by
// head_dim halves (dS and K both read MN-major) and add into the f32 dQ sum with atomics. A tile's
// dQ product and atomics overlap the next tile's products: the atomics of tile t are issued while
// the tensor cores form S^T of tile t + 1, and P^T while they form dP^T; hence three Q/dO buffers
// (tile t + 2 loads while t + 1 is in use and t's dV/dK products may still read theirs) and two
// dS^T buffers. (The registers, 255 a thread, leave no room for a separate producer warp.)
struct HopperBackward {
  static constexpr int kDim = 128, kGroups = 2, kThreads = kGroups * wgmma::kGroupThreads;
  static constexpr int kBlock = 64 * kGroups, kTile = 64, kStages = 3, kDsBuffers = 2;
  // Barriers: K and V in; per stage, a tile in.
  static constexpr int kBarriers = 1 + kStages;
  // K, V, the Q and dO buffers, the dS^T buffers (one swizzled panel each: [kBlock][kTile]), the lse
  // and delta buffers, the barriers, slack to align the start to a swizzle atom.
  static constexpr int kSharedBytes =
      (2 * kBlock * kDim + 2 * kStages * kTile * kDim + kDsBuffers * kBlock * kTile) * 2 + 2 * kStages * kTile * 4 +
      kBarriers * 8 + wgmma::kAtomBytes;
  // Leading offsets of MN-major operands: the 64-column panels of a query tile and of the key block.
  static constexpr uint32_t kTileLeading = kTile * wgmma::kPanel * 2, kBlockLeading = kBlock * wgmma::kPanel * 2;
};

// TMA maps of q and grad_out (boxes of 64 tokens) and of k and v (boxes of 128 tokens); see ForwardMaps.
struct BackwardMaps {
  CUtensorMap q, grad_out, k, v;
};

// Where a CTA's query tiles ("items") come from: item i is query tile i % q_tiles of head
// kv_head * group + i / q_tiles.
struct QueryItems {
  int first, q_tiles, count, kv_head, group;
  __device__ int head(int item) const { return kv_head * group + item / q_tiles; }
  __device__ int first_query(int item) const { return first + (item % q_tiles) * HopperBackward::kTile; }
};

__global__ void __launch_bounds__(HopperBackward::kThreads) hopper_backward(const BackwardParams p,
                                                                           const __grid_constant__ BackwardMaps maps) {
#ifdef PONDER_WGMMA_AVAILABLE
  using G = HopperBackward;
  constexpr int D = G::kDim, BC = G::kBlock, BR = G::kTile, STAGES = G::kStages;
  constexpr uint32_t kAtom = wgmma::kAtomBytes;
  extern __shared__ char shared_raw[];
  bits16* sk = atom_aligned(shared_raw);                                 // [BC][D]
  bits16* sv = sk + BC * D;                                              // [BC][D]
  bits16* sq = sv + BC * D;                                              // [STAGES][BR][D]
  bits16* sdo = sq + STAGES * BR * D;                                    // [STAGES][BR][D]
  bits16* sds = sdo + STAGES * BR * D;                                   // [kDsBuffers][BC][BR], dS^T
  float* slse = reinterpret_cast<float*>(sds + G::kDsBuffers * BC * BR);  // [STAGES][BR], log2 units
  float* sdelta = slse + STAGES * BR;                                    // [STAGES][BR]
  uint64_t* kv_full = reinterpret_cast<uint64_t*>(sdelta + STAGES * BR);
  uint64_t* full = kv_full + 1;  // [STAGES]

  const int kv_head = blockIdx.x % p.kv_heads;
  const int64_t slot = blockIdx.x / p.kv_heads;
  const SampleBlock b = locate_block(p, slot, BC);
  if (!b.active) return;
  const int k0 = b.start, valid_k = b.len - k0;
  const int first = first_query(p.mask, k0, b.prefix);
  const int q_tiles = (b.len - first + BR - 1) / BR;
  const QueryItems items{first, q_tiles, p.group * q_tiles, kv_head, p.group};

  if (threadIdx.x == 0) {
    tma::init(kv_full, 1);
    for (int s = 0; s < STAGES; ++s) tma::init(full + s, G::kThreads);
    tma::fence_init();
  }
  __syncthreads();
  // Item i into buffer i % 3: every thread arrives on its barrier once its share of the lse and
  // delta is written, thread 0 with the TMA copies of Q and dO. Queries past the sample get lse =
  // +inf (P = 0) and delta = 0, so their rows (read from the next sample, or zeros past the tensor)
  // add nothing.
  auto load_item = [&](int item) {
    if (item >= items.count) return;
    const int stage = item % STAGES, head = items.head(item), q0 = items.first_query(item);
    for (int c = threadIdx.x; c < BR; c += G::kThreads) {
      const int i = q0 + c;
      const int64_t at = head * p.tokens + b.begin + i;
      slse[stage * BR + c] = i < b.len ? p.lse[at] * kLog2e : INFINITY;
      sdelta[stage * BR + c] = i < b.len ? p.delta[at] : 0.f;
    }
    if (threadIdx.x != 0) return tma::arrive(full + stage);
    tma::arrive_expecting(full + stage, 2 * BR * D * 2);
    for (int panel = 0; panel < 2; ++panel) {
      const int column = panel * wgmma::kPanel, row = static_cast<int>(b.begin + q0);
      tma::load_box(sq + stage * BR * D + panel * BR * wgmma::kPanel, &maps.q, column, head, row, full + stage);
      tma::load_box(sdo + stage * BR * D + panel * BR * wgmma::kPanel, &maps.grad_out, column, head, row,
                    full + stage);
    }
  };
  if (threadIdx.x == 0) {
    tma::arrive_expecting(kv_full, 2 * BC * D * 2);
    for (int panel = 0; panel < 2; ++panel) {
      const int column = panel * wgmma::kPanel, row = static_cast<int>(b.begin + k0);
      tma::load_box(sk + panel * BC * wgmma::kPanel, &maps.k, column, kv_head, row, kv_full);
      tma::load_box(sv + panel * BC * wgmma::kPanel, &maps.v, column, kv_head, row, kv_full);
    }
  }
  load_item(0);
  load_item(1);

  const int group = threadIdx.x / wgmma::kGroupThreads, warp = (threadIdx.x / 32) % 4;
  const int group_row0 = group * 64, warp_row0 = group_row0 + warp * 16;
  float dq[8][4];  // this warpgroup's half of head_dim for one tile's queries
  auto add_dq = [&](int item) {
    const int head = items.head(item), q0 = items.first_query(item);
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int i = q0 + warp * 16 + fragment_row(0, 2 * half);
      if (i >= b.len) continue;
      float* row = p.dq_sum + ((b.begin + i) * p.q_heads + head) * D + group * wgmma::kPanel;
#pragma unroll
      for (int nt = 0; nt < 8; ++nt) mma::add_pair(row + fragment_column(nt, 0), dq[nt][2 * half], dq[nt][2 * half + 1]);
    }
  };

  int key[2];
#pragma unroll
  for (int half = 0; half < 2; ++half) key[half] = k0 + warp_row0 + fragment_row(0, 2 * half);
  const float scale_log2 = p.scale * kLog2e;
  float dk[1][D / 8][4], dv[1][D / 8][4];
  mma::zero(dk);
  mma::zero(dv);

  tma::wait(kv_full, 0);
  for (int item = 0; item < items.count; ++item) {
    const int buffer = item % STAGES, q0 = items.first_query(item);
    tma::wait(full + buffer, (item / STAGES) & 1);  // this item's tiles are in
    const bits16* q_tile = sq + buffer * BR * D;
    const bits16* do_tile = sdo + buffer * BR * D;
    bits16* ds_tile = sds + (item % G::kDsBuffers) * BC * BR;
    const float* lse2 = slse + buffer * BR;
    const float* delta = sdelta + buffer * BR;
    // Past this point every query of the tile sees every key of the block.
    const bool masked = visible_keys(p.mask, q0, b.len, b.prefix) < k0 + BC;

    float st[BR / 8][4], dst[BR / 8][4];  // S^T, then P^T; dP^T, then dS^T
    wgmma::wait<0>();  // the previous tile's products
    wgmma::hold(dq);
    wgmma::hold(dk[0]);
    wgmma::hold(dv[0]);
    wgmma::fence();
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks) {
      wgmma::mma_ss<0, 0>(st, wgmma::k_major(sk, BC, group_row0, ks), wgmma::k_major(q_tile, BR, 0, ks), ks > 0);
    }
    wgmma::commit();
    if (item > 0) add_dq(item - 1);  // while S^T forms
    wgmma::fence();
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks) {
      wgmma::mma_ss<0, 0>(dst, wgmma::k_major(sv, BC, group_row0, ks), wgmma::k_major(do_tile, BR, 0, ks), ks > 0);
    }
    wgmma::commit();
    wgmma::wait<1>();
    wgmma::hold(st);
#pragma unroll
    for (int nt = 0; nt < BR / 8; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int c = fragment_column(nt, e);
        float prob = exp2f(fmaf(st[nt][e], scale_log2, -lse2[c]));
        if (masked && key[e / 2] >= visible_keys(p.mask, q0 + c, b.len, b.prefix)) prob = 0.f;
        st[nt][e] = prob;
      }
    }
    wgmma::wait<0>();  // dP^T, formed while P^T was
    wgmma::hold(dst);
#pragma unroll
    for (int nt = 0; nt < BR / 8; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) dst[nt][e] = st[nt][e] * (dst[nt][e] - delta[fragment_column(nt, e)]);
    }
    uint32_t pa[BR / 16][4], dsa[BR / 16][4];
    probabilities_as_a<BR / 8>(pa, st);
    probabilities_as_a<BR / 8>(dsa, dst);
    wgmma::fence();
#pragma unroll
    for (int j = 0; j < BR / 16; ++j) {
      wgmma::mma_rs<1>(dv[0], pa[j], wgmma::mn_major(do_tile, BR, j, G::kTileLeading, kAtom), true);
    }
#pragma unroll
    for (int j = 0; j < BR / 16; ++j) {
      wgmma::mma_rs<1>(dk[0], dsa[j], wgmma::mn_major(q_tile, BR, j, G::kTileLeading, kAtom), true);
    }
    wgmma::commit();

    // dS^T rows of this thread's keys into the shared tile, for dQ.
#pragma unroll
    for (int nt = 0; nt < BR / 8; ++nt) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int row = warp_row0 + fragment_row(0, 2 * half), col = fragment_column(nt, 0);
        *reinterpret_cast<uint32_t*>(ds_tile + wgmma::swizzled_offset(BC, row, col)) =
            dsa[nt / 2][(nt % 2) * 2 + half];
      }
    }
    wgmma::fence_shared_for_async();
    // Both warpgroups' dS^T rows are in place, and both have finished the previous item's dV/dK
    // products, so its Q/dO buffer may take item + 2.
    __syncthreads();
    load_item(item + 2);
    wgmma::fence();  // dq was read by the atomics since its last product
#pragma unroll
    for (int j = 0; j < BC / 16; ++j) {
      wgmma::mma_ss<1, 1>(dq, wgmma::mn_major(ds_tile, BC, j, G::kBlockLeading, kAtom),
                          wgmma::mn_major(sk + group * BC * wgmma::kPanel, BC, j, G::kBlockLeading, kAtom), j > 0);
    }
    wgmma::commit();
  }
  wgmma::wait<0>();
  wgmma::hold(dq);
  wgmma::hold(dk[0]);
  wgmma::hold(dv[0]);
  if (items.count > 0) add_dq(items.count - 1);
  float dk_factor[1][2] = {{p.scale, p.scale}}, dv_factor[1][2] = {{1.f, 1.f}};
  const int64_t first_key = b.begin + k0 + warp_row0;
  store_rows<1, D>(static_cast<bits16*>(p.dk), dk, dk_factor, first_key, valid_k - warp_row0, p.kv_heads, kv_head);
  store_rows<1, D>(static_cast<bits16*>(p.dv), dv, dv_factor, first_key, valid_k - warp_row0, p.kv_heads, kv_head);
#endif
}

}  // namespace ponder::kernels::attention
