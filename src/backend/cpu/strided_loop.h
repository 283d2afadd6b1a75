// Iteration over N operands that share a shape but not strides (views, broadcasts, transposes).
// Dimensions are collapsed where every operand is contiguous across them, the innermost run is
// handed to the callback as (pointers, count, inner strides) so it can be a tight loop, and the
// outer runs are spread over OpenMP threads when there is enough work.
#pragma once

#include <array>
#include <cstdint>

#include "tensor/tensor.h"

namespace ponder::backend::cpu {

constexpr int64_t kParallelGrain = 32768;  // elements below which threads cost more than they save

template <int N>
struct StridedGeometry {
  Shape shape;
  std::array<Strides, N> strides;  // in elements
};

// Merges adjacent dims i, i+1 when, for every operand, stride[i] == stride[i+1] * shape[i+1].
template <int N>
StridedGeometry<N> collapse(const Shape& shape, const std::array<Strides, N>& strides) {
  StridedGeometry<N> g;
  if (shape.size() == 0) {
    g.shape = {1};
    for (int k = 0; k < N; ++k) g.strides[k] = {0};
    return g;
  }
  g.shape.push_back(shape[0]);
  for (int k = 0; k < N; ++k) g.strides[k].push_back(strides[k][0]);
  for (int i = 1; i < shape.size(); ++i) {
    bool mergeable = true;
    for (int k = 0; k < N; ++k) {
      if (g.strides[k].back() != strides[k][i] * shape[i]) mergeable = false;
    }
    if (mergeable) {
      int last = g.shape.size() - 1;
      g.shape[last] *= shape[i];
      for (int k = 0; k < N; ++k) g.strides[k][last] = strides[k][i];
    } else {
      g.shape.push_back(shape[i]);
      for (int k = 0; k < N; ++k) g.strides[k].push_back(strides[k][i]);
    }
  }
  return g;
}

// fn(std::array<char*, N> ptrs, int64_t count, std::array<int64_t, N> inner_strides_in_bytes)
// is called once per innermost run.
template <int N, class Fn>
void for_each_run(const std::array<Tensor, N>& operands, Fn&& fn) {
  std::array<Strides, N> strides;
  for (int k = 0; k < N; ++k) strides[k] = operands[k].strides();
  StridedGeometry<N> g = collapse<N>(operands[0].shape(), strides);
  const int nd = g.shape.size();
  const int64_t inner = g.shape[nd - 1];
  const int64_t outer = g.shape.product() / (inner ? inner : 1);
  if (g.shape.product() == 0) return;

  std::array<char*, N> base;
  std::array<int64_t, N> elem;
  std::array<int64_t, N> inner_bytes;
  for (int k = 0; k < N; ++k) {
    base[k] = static_cast<char*>(operands[k].data_ptr());
    elem[k] = static_cast<int64_t>(element_size(operands[k].dtype()));
    inner_bytes[k] = g.strides[k][nd - 1] * elem[k];
  }
  auto run_outer = [&](int64_t o) {
    std::array<char*, N> p = base;
    int64_t rest = o;
    for (int d = nd - 2; d >= 0; --d) {
      int64_t idx = rest % g.shape[d];
      rest /= g.shape[d];
      for (int k = 0; k < N; ++k) p[k] += idx * g.strides[k][d] * elem[k];
    }
    fn(p, inner, inner_bytes);
  };
  if (outer > 1 && outer * inner >= kParallelGrain) {
#pragma omp parallel for schedule(static)
    for (int64_t o = 0; o < outer; ++o) run_outer(o);
  } else if (outer == 1 && inner >= kParallelGrain) {
    // One long run: split it into chunks so large contiguous tensors use every core.
    const int64_t chunk = kParallelGrain;
    const int64_t pieces = (inner + chunk - 1) / chunk;
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < pieces; ++c) {
      std::array<char*, N> p = base;
      for (int k = 0; k < N; ++k) p[k] += c * chunk * inner_bytes[k];
      fn(p, std::min(chunk, inner - c * chunk), inner_bytes);
    }
  } else {
    for (int64_t o = 0; o < outer; ++o) run_outer(o);
  }
}

}  // namespace ponder::backend::cpu
