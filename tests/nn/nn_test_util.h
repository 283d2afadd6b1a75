// Helpers shared by the layer tests: packed batches, parameter names and module gradchecks.
#pragma once

#include <string>
#include <vector>

#include "nn/module.h"
#include "support/test_util.h"

namespace ponder::nn::testing {

// A packed batch of samples with the given lengths: positions restart at 0 in every sample.
struct Packed {
  AttentionSpec spec;
  Tensor positions;  // i64 [N]
  int64_t tokens = 0;
};

inline Packed packed(const std::vector<int>& lengths, AttentionMask mask = AttentionMask::causal,
                     const std::vector<int>& prefixes = {}) {
  std::vector<double> cu = {0}, pos;
  for (int len : lengths) {
    cu.push_back(cu.back() + len);
    for (int i = 0; i < len; ++i) pos.push_back(i);
  }
  Packed p;
  p.tokens = static_cast<int64_t>(cu.back());
  p.spec.mask = mask;
  p.spec.cu_seqlens = tensor(cu, {int64_t(cu.size())}, {.dtype = DType::i32});
  if (mask == AttentionMask::prefix_lm) {
    p.spec.prefix_len = tensor(std::vector<double>(prefixes.begin(), prefixes.end()), {int64_t(prefixes.size())},
                               {.dtype = DType::i32});
  }
  p.positions = tensor(pos, {p.tokens}, {.dtype = DType::i64});
  return p;
}

inline std::vector<std::string> parameter_names(const Module& m) {
  std::vector<std::string> names;
  for (const auto& [name, p] : m.named_parameters()) names.push_back(name);
  return names;
}

// Gradchecks forward(x) with respect to x and every trainable parameter of `m` (already f64).
template <class Forward>
::testing::AssertionResult gradcheck_module(const Module& m, const Tensor& x, Forward forward) {
  TensorList inputs = m.parameters();
  inputs.push_back(x);
  return ponder::testing::gradcheck([&](const TensorList& in) { return forward(in.back()); }, inputs);
}

}  // namespace ponder::nn::testing
