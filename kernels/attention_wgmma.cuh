// Hopper (sm_90a) attention for head_dim 128. Forward: the FlashAttention-2 algorithm of
// attention_flash.cuh with both products on warpgroup tensor cores (wgmma). A CTA of two warpgroups
// owns 128 queries of one head and sample (64 per warpgroup); K and V come in tiles of 128 keys,
// three buffers deep in 128-byte-swizzled shared memory. S = Q K^T reads Q and K from shared memory;
// P stays in registers as the A operand of O += P V, V read MN-major. Scores are in log2 units.
#pragma once

#include "kernels/attention_common.cuh"
#include "kernels/attention_flash.cuh"
#include "kernels/wgmma.cuh"

namespace ponder::kernels::attention {

template <int GROUPS, int TILE>
struct HopperForward {
  static constexpr int kDim = 128, kGroups = GROUPS, kThreads = kGroups * wgmma::kGroupThreads;
  static constexpr int kBlock = 64 * kGroups, kTile = TILE, kStages = 3;
  // Q, then the K and the V buffers, plus slack to align the start to a swizzle atom.
  static constexpr int kSharedBytes = (kBlock + 2 * kStages * kTile) * kDim * 2 + wgmma::kAtomBytes;
  // MN-major V (PTX ISA matrix descriptor, swizzled MN-major): the leading offset steps between
  // 64-column panels along N, the stride offset between 8-row atoms along K.
  static constexpr uint32_t kVLeading = kTile * wgmma::kPanel * 2, kVStride = wgmma::kAtomBytes;
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

// Per key tile t (K_t in buffer t % 3, V_t likewise): issue S_t = Q K_t, then O += P_{t-1} V_{t-1};
// wait for S_t only; softmax of S_t while the P V product runs; then wait for it and rescale O.
// Iteration t needs K_t and V_{t-1}; at its top, after the barrier that ends every warpgroup's use
// of the buffers they overwrite (K_{t-1}, V_{t-2}), it starts loading K_{t+2} and V_{t+1}, so each
// load has two iterations to land. Every iteration commits one copy group (perhaps empty).
template <class G>
__global__ void __launch_bounds__(G::kThreads) hopper_forward(ForwardParams p) {
#ifdef PONDER_WGMMA_AVAILABLE
  constexpr int D = G::kDim, BR = G::kBlock, BC = G::kTile;
  extern __shared__ char shared_raw[];
  bits16* sq = atom_aligned(shared_raw);  // [BR][D] swizzled
  bits16* sk = sq + BR * D;               // [stages][BC][D]
  bits16* sv = sk + G::kStages * BC * D;  // [stages][BC][D]

  const int head = blockIdx.x % p.q_heads, kv_head = head / p.group;
  const int64_t slots = gridDim.x / p.q_heads, slot = slots - 1 - blockIdx.x / p.q_heads;
  const SampleBlock b = locate_block(p, slot, BR);
  if (!b.active) return;
  const int q0 = b.start, valid_q = b.len - q0;
  const int group_row0 = (threadIdx.x / wgmma::kGroupThreads) * 64;
  const int warp_row0 = group_row0 + (threadIdx.x / 32) % 4 * 16;

  const int kv_end = visible_keys(p.mask, min(q0 + BR, b.len) - 1, b.len, b.prefix);
  const int open = visible_keys(p.mask, q0, b.len, b.prefix);
  const int tiles = (kv_end + BC - 1) / BC;
  auto load_tile = [&](const void* src, bits16* buffers, int t) {
    if (t >= tiles) return;
    wgmma::load_rows<BC, D, G::kThreads>(buffers + (t % G::kStages) * BC * D, static_cast<const bits16*>(src),
                                         b.begin + t * BC, b.len - t * BC, p.kv_heads, kv_head, threadIdx.x);
  };
  wgmma::load_rows<BR, D, G::kThreads>(sq, static_cast<const bits16*>(p.q), b.begin + q0, valid_q, p.q_heads, head,
                                       threadIdx.x);
  load_tile(p.k, sk, 0);
  mma::commit_copies();
  load_tile(p.k, sk, 1);
  load_tile(p.v, sv, 0);
  mma::commit_copies();

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
    const bits16* v_tile = sv + (t % G::kStages) * BC * D;
#pragma unroll
    for (int j = 0; j < BC / 16; ++j) {
      wgmma::mma_rs<1>(o[0], pa[j], wgmma::mn_major(v_tile, BC, j, G::kVLeading, G::kVStride), true);
    }
    wgmma::commit();
  };

  for (int t = 0; t < tiles; ++t) {
    mma::wait_copies<1>();
    wgmma::fence_shared_for_async();
    __syncthreads();
    load_tile(p.k, sk, t + 2);
    load_tile(p.v, sv, t + 1);
    mma::commit_copies();

    float s[BC / 8][4];
    const bits16* k_tile = sk + (t % G::kStages) * BC * D;
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
    wgmma::hold(s);
    float rescale[2];
    rows.absorb(s, t * BC, t * BC + BC > open, scale_log2, rescale);
    wgmma::wait<0>();
    wgmma::hold(o[0]);
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) o[0][dt][e] *= rescale[e / 2];
    }
    probabilities_as_a(pa, s);
  }
  mma::wait_copies<0>();
  wgmma::fence_shared_for_async();
  __syncthreads();
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
// tiles of 64 that see them (every query head of the GQA group). Per tile, each warpgroup forms
// S^T = K Q^T and dP^T = V dO^T for its keys (both operands K-major in shared memory), turns them
// into P^T and dS^T in registers, and adds dV += P^T dO and dK += dS^T Q (register A operands, dO
// and Q read MN-major). dS^T goes to shared memory for dQ = dS K, which the two warpgroups split
// by head_dim halves (dS and K both read MN-major) and add into the f32 dQ sum with atomics.
// A tile's dQ product and atomics overlap the next tile's products: the atomics of tile t are
// issued while the tensor cores form S^T of tile t + 1, and P^T while they form dP^T; hence three Q/dO buffers (tile t + 2
// loads while t + 1 is in use and t's dV/dK products may still read theirs) and two dS^T buffers.
struct HopperBackward {
  static constexpr int kDim = 128, kGroups = 2, kThreads = kGroups * wgmma::kGroupThreads;
  static constexpr int kBlock = 64 * kGroups, kTile = 64, kStages = 3, kDsBuffers = 2;
  // K, V, the Q and dO buffers, the dS^T buffers (one swizzled panel each: [kBlock][kTile]), the lse
  // and delta buffers, slack to align the start to a swizzle atom.
  static constexpr int kSharedBytes =
      (2 * kBlock * kDim + 2 * kStages * kTile * kDim + kDsBuffers * kBlock * kTile) * 2 + 2 * kStages * kTile * 4 +
      wgmma::kAtomBytes;
  // Leading offsets of MN-major operands: the 64-column panels of a query tile and of the key block.
  static constexpr uint32_t kTileLeading = kTile * wgmma::kPanel * 2, kBlockLeading = kBlock * wgmma::kPanel * 2;
};

__global__ void __launch_bounds__(HopperBackward::kThreads) hopper_backward(BackwardParams p) {
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

  const int kv_head = blockIdx.x % p.kv_heads;
  const int64_t slot = blockIdx.x / p.kv_heads;
  const SampleBlock b = locate_block(p, slot, BC);
  if (!b.active) return;
  const int k0 = b.start, valid_k = b.len - k0;
  const int group = threadIdx.x / wgmma::kGroupThreads, warp = (threadIdx.x / 32) % 4;
  const int group_row0 = group * 64, warp_row0 = group_row0 + warp * 16;
  const auto* q = static_cast<const bits16*>(p.q);
  const auto* grad_out = static_cast<const bits16*>(p.grad_out);

  const int first = first_query(p.mask, k0, b.prefix);
  const int q_tiles = (b.len - first + BR - 1) / BR, items = p.group * q_tiles;
  auto head_of = [&](int item) { return kv_head * p.group + item / q_tiles; };
  auto first_query_of = [&](int item) { return first + (item % q_tiles) * BR; };
  // Every thread commits one copy group per item, empty past the last, so group counts line up.
  auto load_item = [&](int item) {
    if (item < items) {
      const int buffer = item % STAGES, head = head_of(item), q0 = first_query_of(item);
      wgmma::load_rows<BR, D, G::kThreads>(sq + buffer * BR * D, q, b.begin + q0, b.len - q0, p.q_heads, head,
                                           threadIdx.x);
      wgmma::load_rows<BR, D, G::kThreads>(sdo + buffer * BR * D, grad_out, b.begin + q0, b.len - q0, p.q_heads,
                                           head, threadIdx.x);
      // Queries past the sample get lse = +inf (P = 0) and D = 0, so they add nothing.
      for (int c = threadIdx.x; c < BR; c += G::kThreads) {
        const int i = q0 + c;
        const int64_t at = head * p.tokens + b.begin + i;
        slse[buffer * BR + c] = i < b.len ? p.lse[at] * kLog2e : INFINITY;
        sdelta[buffer * BR + c] = i < b.len ? p.delta[at] : 0.f;
      }
    }
    mma::commit_copies();
  };
  float dq[8][4];  // this warpgroup's half of head_dim for one tile's queries
  auto add_dq = [&](int item) {
    const int head = head_of(item), q0 = first_query_of(item);
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int i = q0 + warp * 16 + fragment_row(0, 2 * half);
      if (i >= b.len) continue;
      float* row = p.dq_sum + ((b.begin + i) * p.q_heads + head) * D + group * wgmma::kPanel;
#pragma unroll
      for (int nt = 0; nt < 8; ++nt) mma::add_pair(row + fragment_column(nt, 0), dq[nt][2 * half], dq[nt][2 * half + 1]);
    }
  };
  wgmma::load_rows<BC, D, G::kThreads>(sk, static_cast<const bits16*>(p.k), b.begin + k0, valid_k, p.kv_heads,
                                       kv_head, threadIdx.x);
  wgmma::load_rows<BC, D, G::kThreads>(sv, static_cast<const bits16*>(p.v), b.begin + k0, valid_k, p.kv_heads,
                                       kv_head, threadIdx.x);
  load_item(0);
  load_item(1);

  int key[2];
#pragma unroll
  for (int half = 0; half < 2; ++half) key[half] = k0 + warp_row0 + fragment_row(0, 2 * half);
  const float scale_log2 = p.scale * kLog2e;
  float dk[1][D / 8][4], dv[1][D / 8][4];
  mma::zero(dk);
  mma::zero(dv);

  for (int item = 0; item < items; ++item) {
    mma::wait_copies<1>();
    wgmma::fence_shared_for_async();
    __syncthreads();  // this item's tiles are in
    const int buffer = item % STAGES, q0 = first_query_of(item);
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
  if (items > 0) add_dq(items - 1);
  float dk_factor[1][2] = {{p.scale, p.scale}}, dv_factor[1][2] = {{1.f, 1.f}};
  const int64_t first_key = b.begin + k0 + warp_row0;
  store_rows<1, D>(static_cast<bits16*>(p.dk), dk, dk_factor, first_key, valid_k - warp_row0, p.kv_heads, kv_head);
  store_rows<1, D>(static_cast<bits16*>(p.dv), dv, dv_factor, first_key, valid_k - warp_row0, p.kv_heads, kv_head);
#endif
}

}  // namespace ponder::kernels::attention
