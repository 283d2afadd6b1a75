// The masking description shared by the attention op and its kernels.
#pragma once

#include <optional>
#include <string_view>

#include "tensor/tensor.h"

namespace ponder {

enum class AttentionMask { causal, bidirectional, prefix_lm };

// The mask's name in recipes, tools and messages.
constexpr const char* mask_name(AttentionMask mask) {
  switch (mask) {
    case AttentionMask::causal: return "causal";
    case AttentionMask::bidirectional: return "bidirectional";
    case AttentionMask::prefix_lm: return "prefix_lm";
  }
  return "?";
}

// The mask of that name, or nothing for a name no mask has.
constexpr std::optional<AttentionMask> mask_named(std::string_view name) {
  for (AttentionMask m : {AttentionMask::causal, AttentionMask::bidirectional, AttentionMask::prefix_lm})
    if (name == mask_name(m)) return m;
  return std::nullopt;
}

// How tokens of a packed batch may attend. The batch's N tokens (all rows flattened) are split into
// samples by cu_seqlens (i32, [S+1], cu_seqlens[0] = 0, non-decreasing, cu_seqlens[S] = N); padding is
// simply its own sample. Attention never crosses samples. For prefix_lm, prefix_len (i32, [S]) gives each
// sample's instruction length P (0 <= P <= sample length): within a sample, query i may attend key j
// iff j <= i or j < P (prefix tokens see the whole prefix; later tokens see everything before them).
// causal: j <= i. bidirectional: every j of the sample.
struct AttentionSpec {
  AttentionMask mask = AttentionMask::causal;
  Tensor cu_seqlens{};  // i32 [S+1], on the device of q
  Tensor prefix_len{};  // i32 [S], only for prefix_lm
};

}  // namespace ponder
