// Hopper (sm_90a) attention for head_dim 128. Forward: the FlashAttention-2 algorithm of
// attention_flash.cuh with both products on warpgroup tensor cores (wgmma). A CTA of two consumer
// warpgroups owns 128 queries of one head and sample (64 per warpgroup); a third, producer
// warpgroup has one thread issue the copies, as in FlashAttention-3: the TMA unit copies Q and the K
// and V tiles of 128 keys (three buffers deep, 128-byte-swizzled shared memory), each copy
// completing on a barrier the consumers wait on, and each consumer warpgroup hands a buffer back on
// a second barrier once its products have read it. The producer gives up its registers
// (setmaxnreg), so the consumers run with 240 a thread, and a consumer waits for the other only
// when it gets three tiles ahead. S = Q K^T reads Q and K from shared memory; P stays in registers
// as the A operand of O += P V, V read MN-major. Scores are in log2 units.
#pragma once

#include "kernels/attention_common.cuh"
#include "kernels/attention_flash.cuh"
#include "kernels/tma.cuh"
#include "kernels/wgmma.cuh"

namespace ponder::kernels::attention {

struct HopperForward {
  static constexpr int kDim = 128, kGroups = 2, kConsumers = kGroups * wgmma::kGroupThreads;
  static constexpr int kThreads = kConsumers + wgmma::kGroupThreads;  // plus the producer warpgroup
  static constexpr int kProducerRegisters = 24, kConsumerRegisters = 240;
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

// Per key tile t (K_t and V_t in buffer t % 3), each consumer warpgroup: issue S_t = Q K_t, then
// O += P_{t-1} V_{t-1}; wait for S_t only (K_t's buffer goes back); softmax of S_t while the P V
// product runs; then wait for it (V_{t-1}'s buffer goes back) and rescale O. The producer copies
// Q, then K_0, V_0, K_1, V_1, ..., each into its buffer once both consumers have handed back the
// tile three before it. Rows past the sample (the last tiles of Q, K and V) are read from the next
// sample, or as zeros past the tensor: masked keys get probability 0 and queries past the sample
// are never stored.
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
      tma::init(k_empty + s, G::kConsumers);
      tma::init(v_empty + s, G::kConsumers);
    }
    tma::fence_init();
  }
  __syncthreads();

  if (threadIdx.x >= G::kConsumers) {  // the producer warpgroup
    wgmma::release_registers<G::kProducerRegisters>();
    if (threadIdx.x != G::kConsumers) return;
    load_tile<BR>(sq, &maps.q, head, b.begin + q0, q_full);
    for (int t = 0; t < tiles; ++t) {
      const int stage = t % S, use = t / S;
      const int64_t first = b.begin + int64_t(t) * BC;
      if (use > 0) tma::wait(k_empty + stage, (use - 1) & 1);
      load_tile<BC>(sk + stage * BC * D, &maps.k, kv_head, first, k_full + stage);
      if (use > 0) tma::wait(v_empty + stage, (use - 1) & 1);
      load_tile<BC>(sv + stage * BC * D, &maps.v, kv_head, first, v_full + stage);
    }
    return;
  }
  wgmma::claim_registers<G::kConsumerRegisters>();

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
// The single-pass backward of attention_flash.cuh on warpgroup tensor cores. A CTA of two consumer
// warpgroups owns 128 keys of one kv head and sample (64 per warpgroup) and loops over the query
// tiles of 64 that see them (every query head of the GQA group). A producer warpgroup feeds them,
// as in the forward: one thread has the TMA unit copy K and V once and each tile's Q and dO (two
// buffers deep), two warps write the tile's lse and delta next to them, and the tile's barrier
// completes once all of it is in; the consumers hand a buffer back on a second barrier once their
// dV/dK products have read it. Per tile, each consumer warpgroup forms S^T = K Q^T and
// dP^T = V dO^T for its keys (both operands K-major in shared memory), turns them into P^T and dS^T
// in registers, and adds dV += P^T dO and dK += dS^T Q (register A operands, dO and Q read
// MN-major). dS^T goes to shared memory for dQ = dS K, which the two warpgroups split by head_dim
// halves (dS and K both read MN-major). Each warpgroup leaves its dQ half in a shared f32 tile
// while the tensor cores form S^T of the next tile, and a third producer warp adds the tile into
// the f32 dQ sum with bulk reductions of the TMA unit, off the consumers' path (atomics issued by
// the consumers themselves held up each tile's products). Two dS^T buffers let a warpgroup write
// tile t + 1's while the other's dQ product may still read tile t's.
struct HopperBackward {
  static constexpr int kDim = 128, kGroups = 2, kConsumers = kGroups * wgmma::kGroupThreads;
  static constexpr int kThreads = kConsumers + wgmma::kGroupThreads;  // plus the producer warpgroup
  static constexpr int kProducerRegisters = 24, kConsumerRegisters = 240;
  static constexpr int kBlock = 64 * kGroups, kTile = 64, kStages = 2, kDsBuffers = 2;
  // A dQ tile row: head_dim f32 plus 8, so that the 8 rows a warp writes at once start in
  // different banks (rows stay 16-byte aligned for the bulk reductions).
  static constexpr int kDqRow = kDim + 8;
  // Barriers: K and V in; per stage, a tile in and a tile handed back; the dQ tile staged, and
  // added into the sum.
  static constexpr int kBarriers = 1 + 2 * kStages + 2;
  // K, V, the Q and dO buffers, the dS^T buffers (one swizzled panel each: [kBlock][kTile]), the dQ
  // tile, the lse and delta buffers, the barriers, slack to align the start to a swizzle atom.
  static constexpr int kSharedBytes =
      (2 * kBlock * kDim + 2 * kStages * kTile * kDim + kDsBuffers * kBlock * kTile) * 2 +
      (kTile * kDqRow + 2 * kStages * kTile) * 4 + kBarriers * 8 + wgmma::kAtomBytes;
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

// The backward's shared memory: K and V, per stage a query tile's Q, dO, lse (log2 units) and
// delta, the dS^T buffers, the dQ tile and the barriers.
struct BackwardShared {
  using G = HopperBackward;
  bits16 *k, *v, *q, *grad_out, *ds;
  float *dq, *lse, *delta;
  uint64_t *kv_full, *full, *empty, *dq_full, *dq_empty;

  __device__ explicit BackwardShared(char* raw) {
    constexpr int BC = G::kBlock, BR = G::kTile, D = G::kDim, STAGES = G::kStages;
    k = atom_aligned(raw);                 // [BC][D]
    v = k + BC * D;                        // [BC][D]
    q = v + BC * D;                        // [STAGES][BR][D]
    grad_out = q + STAGES * BR * D;        // [STAGES][BR][D]
    ds = grad_out + STAGES * BR * D;       // [kDsBuffers][BC][BR], dS^T
    dq = reinterpret_cast<float*>(ds + G::kDsBuffers * BC * BR);  // [BR][kDqRow]
    lse = dq + BR * G::kDqRow;                                     // [STAGES][BR]
    delta = lse + STAGES * BR;                                     // [STAGES][BR]
    kv_full = reinterpret_cast<uint64_t*>(delta + STAGES * BR);
    full = kv_full + 1;       // [STAGES]
    empty = full + STAGES;    // [STAGES]
    dq_full = empty + STAGES;
    dq_empty = dq_full + 1;
  }
};

// The producer warpgroup's first two warps (thread c of 64): K and V, then each item into buffer
// item % 2 once the consumers have handed back the item two before it. Thread c writes the
// item's lse and delta of query c; thread 0 also starts the TMA copies of Q and dO. Queries past
// the sample get lse = +inf (P = 0) and delta = 0, so their rows (read from the next sample, or
// zeros past the tensor) add nothing.
__device__ __forceinline__ void produce_backward_items(const BackwardParams& p, const BackwardMaps& maps,
                                                       const BackwardShared& sh, const SampleBlock& b,
                                                       const QueryItems& items, int c) {
  using G = HopperBackward;
  constexpr int BC = G::kBlock, BR = G::kTile, D = G::kDim, STAGES = G::kStages;
  if (c == 0) {
    tma::arrive_expecting(sh.kv_full, 2 * BC * D * 2);
    for (int panel = 0; panel < 2; ++panel) {
      const int column = panel * wgmma::kPanel, row = static_cast<int>(b.begin + b.start);
      tma::load_box(sh.k + panel * BC * wgmma::kPanel, &maps.k, column, items.kv_head, row, sh.kv_full);
      tma::load_box(sh.v + panel * BC * wgmma::kPanel, &maps.v, column, items.kv_head, row, sh.kv_full);
    }
  }
  for (int item = 0; item < items.count; ++item) {
    const int stage = item % STAGES, use = item / STAGES, head = items.head(item), q0 = items.first_query(item);
    if (use > 0) tma::wait(sh.empty + stage, (use - 1) & 1);
    const int i = q0 + c;
    const int64_t at = head * p.tokens + b.begin + i;
    sh.lse[stage * BR + c] = i < b.len ? p.lse[at] * kLog2e : INFINITY;
    sh.delta[stage * BR + c] = i < b.len ? p.delta[at] : 0.f;
    if (c != 0) {
      tma::arrive(sh.full + stage);
      continue;
    }
    tma::arrive_expecting(sh.full + stage, 2 * BR * D * 2);
    for (int panel = 0; panel < 2; ++panel) {
      const int column = panel * wgmma::kPanel, row = static_cast<int>(b.begin + q0);
      tma::load_box(sh.q + stage * BR * D + panel * BR * wgmma::kPanel, &maps.q, column, head, row, sh.full + stage);
      tma::load_box(sh.grad_out + stage * BR * D + panel * BR * wgmma::kPanel, &maps.grad_out, column, head, row,
                    sh.full + stage);
    }
  }
}

// The producer warpgroup's third warp: adds each item's staged dQ tile into the f32 sum, a bulk
// reduction per query row of the sample (lane l takes rows l and l + 32), then hands the tile back.
__device__ __forceinline__ void reduce_backward_dq(const BackwardParams& p, const BackwardShared& sh,
                                                   const SampleBlock& b, const QueryItems& items, int lane) {
  using G = HopperBackward;
  for (int item = 0; item < items.count; ++item) {
    const int head = items.head(item), q0 = items.first_query(item);
    tma::wait(sh.dq_full, item & 1);
    for (int r = lane; r < G::kTile; r += 32) {
      const int i = q0 + r;
      if (i < b.len) {
        tma::reduce_add(p.dq_sum + ((b.begin + i) * p.q_heads + head) * G::kDim, sh.dq + r * G::kDqRow,
                        G::kDim * 4);
      }
    }
    tma::commit_and_wait_reads();
    __syncwarp();
    if (lane == 0) tma::arrive(sh.dq_empty);
  }
}

__global__ void __launch_bounds__(HopperBackward::kThreads) hopper_backward(const BackwardParams p,
                                                                           const __grid_constant__ BackwardMaps maps) {
#ifdef PONDER_WGMMA_AVAILABLE
  using G = HopperBackward;
  constexpr int D = G::kDim, BC = G::kBlock, BR = G::kTile, STAGES = G::kStages;
  constexpr uint32_t kAtom = wgmma::kAtomBytes;
  extern __shared__ char shared_raw[];
  const BackwardShared sh(shared_raw);

  const int kv_head = blockIdx.x % p.kv_heads;
  const int64_t slot = blockIdx.x / p.kv_heads;
  const SampleBlock b = locate_block(p, slot, BC);
  if (!b.active) return;
  const int k0 = b.start, valid_k = b.len - k0;
  const int first = first_query(p.mask, k0, b.prefix);
  const int q_tiles = (b.len - first + BR - 1) / BR;
  const QueryItems items{first, q_tiles, p.group * q_tiles, kv_head, p.group};

  if (threadIdx.x == 0) {
    tma::init(sh.kv_full, 1);
    for (int s = 0; s < STAGES; ++s) {
      tma::init(sh.full + s, BR);
      tma::init(sh.empty + s, G::kConsumers);
    }
    tma::init(sh.dq_full, G::kConsumers);
    tma::init(sh.dq_empty, 1);
    tma::fence_init();
  }
  __syncthreads();
  if (threadIdx.x >= G::kConsumers) {  // the producer warpgroup
    wgmma::release_registers<G::kProducerRegisters>();
    const int c = threadIdx.x - G::kConsumers;
    if (c < BR) produce_backward_items(p, maps, sh, b, items, c);
    if (c / 32 == BR / 32) reduce_backward_dq(p, sh, b, items, c % 32);
    return;
  }
  wgmma::claim_registers<G::kConsumerRegisters>();

  const int group = threadIdx.x / wgmma::kGroupThreads, warp = (threadIdx.x / 32) % 4;
  const int group_row0 = group * 64, warp_row0 = group_row0 + warp * 16;
  float dq[8][4];  // this warpgroup's half of head_dim for one tile's queries
  // Item `item`'s dQ half into the shared tile once the dQ warp has taken the previous item's.
  auto stage_dq = [&](int item) {
    if (item > 0) tma::wait(sh.dq_empty, (item - 1) & 1);
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float* row = sh.dq + (warp * 16 + fragment_row(0, 2 * half)) * G::kDqRow + group * wgmma::kPanel;
#pragma unroll
      for (int nt = 0; nt < 8; ++nt) {
        *reinterpret_cast<float2*>(row + fragment_column(nt, 0)) = make_float2(dq[nt][2 * half], dq[nt][2 * half + 1]);
      }
    }
    wgmma::fence_shared_for_async();  // the bulk reductions read it through the async proxy
    tma::arrive(sh.dq_full);
  };

  int key[2];
#pragma unroll
  for (int half = 0; half < 2; ++half) key[half] = k0 + warp_row0 + fragment_row(0, 2 * half);
  const float scale_log2 = p.scale * kLog2e;
  float dk[1][D / 8][4], dv[1][D / 8][4];
  mma::zero(dk);
  mma::zero(dv);

  tma::wait(sh.kv_full, 0);
  for (int item = 0; item < items.count; ++item) {
    const int buffer = item % STAGES, q0 = items.first_query(item);
    tma::wait(sh.full + buffer, (item / STAGES) & 1);  // this item's tiles are in
    const bits16* q_tile = sh.q + buffer * BR * D;
    const bits16* do_tile = sh.grad_out + buffer * BR * D;
    bits16* ds_tile = sh.ds + (item % G::kDsBuffers) * BC * BR;
    const float* lse2 = sh.lse + buffer * BR;
    const float* delta = sh.delta + buffer * BR;
    // Past this point every query of the tile sees every key of the block.
    const bool masked = visible_keys(p.mask, q0, b.len, b.prefix) < k0 + BC;

    float st[BR / 8][4], dst[BR / 8][4];  // S^T, then P^T; dP^T, then dS^T
    wgmma::wait<0>();  // the previous tile's products
    wgmma::hold(dq);
    wgmma::hold(dk[0]);
    wgmma::hold(dv[0]);
    if (item > 0) tma::arrive(sh.empty + (item - 1) % STAGES);  // its Q and dO have been read
    wgmma::fence();
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks) {
      wgmma::mma_ss<0, 0>(st, wgmma::k_major(sh.k, BC, group_row0, ks), wgmma::k_major(q_tile, BR, 0, ks), ks > 0);
    }
    wgmma::commit();
    if (item > 0) stage_dq(item - 1);  // while S^T forms
    wgmma::fence();
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks) {
      wgmma::mma_ss<0, 0>(dst, wgmma::k_major(sh.v, BC, group_row0, ks), wgmma::k_major(do_tile, BR, 0, ks), ks > 0);
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
    // Both warpgroups' dS^T rows are in place (the producer does not take part).
    wgmma::sync_threads<1, G::kConsumers>();
    wgmma::fence();  // dq was read for the shared tile since its last product
#pragma unroll
    for (int j = 0; j < BC / 16; ++j) {
      wgmma::mma_ss<1, 1>(dq, wgmma::mn_major(ds_tile, BC, j, G::kBlockLeading, kAtom),
                          wgmma::mn_major(sh.k + group * BC * wgmma::kPanel, BC, j, G::kBlockLeading, kAtom), j > 0);
    }
    wgmma::commit();
  }
  wgmma::wait<0>();
  wgmma::hold(dq);
  wgmma::hold(dk[0]);
  wgmma::hold(dv[0]);
  if (items.count > 0) stage_dq(items.count - 1);
  float dk_factor[1][2] = {{p.scale, p.scale}}, dv_factor[1][2] = {{1.f, 1.f}};
  const int64_t first_key = b.begin + k0 + warp_row0;
  store_rows<1, D>(static_cast<bits16*>(p.dk), dk, dk_factor, first_key, valid_k - warp_row0, p.kv_heads, kv_head);
  store_rows<1, D>(static_cast<bits16*>(p.dv), dv, dv_factor, first_key, valid_k - warp_row0, p.kv_heads, kv_head);
#endif
}

}  // namespace ponder::kernels::attention
