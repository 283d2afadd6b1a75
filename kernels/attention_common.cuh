// What every attention kernel shares: its parameters, the mask rule of backend/attention_spec.h,
// and the mapping from a CTA to a block of rows of one packed sample.
//
// Blocks of B rows are laid out sample by sample without knowing the sample lengths on the host:
// sample s owns the slots [floor(cu[s] / B) + s, floor(cu[s + 1] / B) + s + 1), which hold its
// ceil(len / B) blocks (floor(a) + ceil(l) <= floor(a + l) + 1) and never overlap the next sample's.
// So floor(N / B) + S slots cover every block of every sample, a CTA finds its sample by a binary
// search over cu_seqlens, and neither the grid nor the kernels need the longest sample or a copy of
// cu_seqlens on the host. Slots past the end of a short sample exit at once.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "backend/attention_spec.h"

namespace ponder::kernels::attention {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

struct Params {
  const void *q, *k, *v;
  const int32_t* cu_seqlens;  // [samples + 1]
  const int32_t* prefix_len;  // [samples], prefix_lm only
  AttentionMask mask;
  int64_t tokens;
  int samples, q_heads, kv_heads, dim;
  int group;  // q_heads / kv_heads
  float scale;
};

struct ForwardParams : Params {
  void* out;
  float* lse;  // [q_heads, tokens]
};

struct BackwardParams : Params {
  const void* grad_out;
  const float* lse;    // [q_heads, tokens]
  const float* delta;  // rowsum(grad_out * out), [q_heads, tokens]
  void *dq, *dk, *dv;
  float* dq_sum;  // [tokens, q_heads, dim] f32, zeroed: the single-pass backward adds dS K here; else null
};

// Query i of a sample of `len` tokens with prefix `prefix` sees keys [0, visible_keys) of it.
__device__ __forceinline__ int visible_keys(AttentionMask mask, int i, int len, int prefix) {
  switch (mask) {
    case AttentionMask::causal: return i + 1;
    case AttentionMask::bidirectional: return len;
    case AttentionMask::prefix_lm: return max(i + 1, prefix);
  }
  return 0;
}

// The first query that sees key j; every later query of the sample sees it too.
__device__ __forceinline__ int first_query(AttentionMask mask, int j, int prefix) {
  switch (mask) {
    case AttentionMask::causal: return j;
    case AttentionMask::bidirectional: return 0;
    case AttentionMask::prefix_lm: return j < prefix ? 0 : j;
  }
  return 0;
}

// One sample's tokens [begin, begin + len), its prefix, and the first row `start` of this CTA's block.
struct SampleBlock {
  int64_t begin;
  int len, prefix, start;
  bool active;  // false for slots past the end of the sample
};

// cu_seqlens entry s, clamped into [0, tokens] so a malformed one can never address outside q.
__device__ __forceinline__ int64_t boundary(const Params& p, int s) {
  return min(max(int64_t(p.cu_seqlens[s]), int64_t(0)), p.tokens);
}

__device__ __forceinline__ SampleBlock sample_block(const Params& p, int s, int64_t start) {
  SampleBlock b;
  b.begin = boundary(p, s);
  b.len = static_cast<int>(max(boundary(p, s + 1) - b.begin, int64_t(0)));
  b.prefix = p.mask == AttentionMask::prefix_lm ? min(max(p.prefix_len[s], 0), b.len) : 0;
  b.active = start >= 0 && start < b.len;
  b.start = b.active ? static_cast<int>(start) : 0;
  return b;
}

// The sample and row block of slot `slot` (see the top of this file) for blocks of `rows` rows.
__device__ __forceinline__ SampleBlock locate_block(const Params& p, int64_t slot, int rows) {
  auto first_slot = [&](int s) { return boundary(p, s) / rows + s; };
  int lo = 0, hi = p.samples - 1;  // the last sample whose first slot is <= slot
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (first_slot(mid) <= slot) lo = mid;
    else hi = mid - 1;
  }
  return sample_block(p, lo, (slot - first_slot(lo)) * rows);
}

// The slots of blocks of `rows` rows (floor(N / rows) + S, see the top of this file).
inline int64_t block_slots(int64_t tokens, int samples, int rows) { return tokens / rows + samples; }

// The sample holding token t (the last sample starting at or before it) and t's row in it.
__device__ __forceinline__ SampleBlock locate_token(const Params& p, int64_t t) {
  int lo = 0, hi = p.samples - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (boundary(p, mid) <= t) lo = mid;
    else hi = mid - 1;
  }
  return sample_block(p, lo, t - boundary(p, lo));
}

}  // namespace ponder::kernels::attention
