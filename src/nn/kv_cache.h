// The keys and values one attention call has computed for one sequence so far (after RoPE), so
// that generating a token runs each attention call over that token alone and reads the earlier
// ones from here. Inference only: nothing that passes through a cache records gradients.
#pragma once

#include "tensor/tensor.h"

namespace ponder::nn {

class KVCache {
 public:
  // Appends the keys and values [n, kv_heads, head_dim] of the next n tokens. The storage doubles
  // when full, so appending one token at a time copies each entry a constant number of times on
  // average instead of once per step.
  void append(const Tensor& k, const Tensor& v);
  // Keeps only the first `length` tokens, so the next append overwrites the rest in place (SST's
  // deliberation recomputes the newest tokens' keys and values).
  void truncate(int64_t length);
  // Every cached key or value: views [length, kv_heads, head_dim].
  Tensor keys() const;
  Tensor values() const;
  int64_t length() const { return length_; }

 private:
  void grow(int64_t needed, const Tensor& like);

  Tensor k_, v_;  // [capacity, kv_heads, head_dim]
  int64_t length_ = 0;
};

// Attention of the newest token's queries q [1, heads, head_dim] over every token in `cache` (the
// newest one included, so append it first): softmax(scale · q kᵀ) v per head, query head h reading
// kv head h / (heads / kv_heads). Nothing is masked: the newest token sees the whole sequence.
// Composed of matmul and softmax, so it runs on every device they run on.
Tensor attend_to_cache(const Tensor& q, const KVCache& cache, double scale);

}  // namespace ponder::nn
