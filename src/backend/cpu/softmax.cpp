#include "backend/cpu/softmax.h"

#include <cmath>

namespace ponder::backend::cpu {
namespace {

// Rows are independent, so splitting them across threads keeps results deterministic.
constexpr int64_t kParallelWork = 32768;

int64_t row_length(const Tensor& t) { return t.dim() == 0 ? 1 : t.shape().back(); }

// Calls fn(r) for every row index, in parallel when the tensor is large.
template <class Fn>
void for_each_row(int64_t rows, int64_t row, Fn fn) {
#pragma omp parallel for schedule(static) if (rows * row > kParallelWork && rows > 1)
  for (int64_t r = 0; r < rows; ++r) fn(r);
}

template <class T>
void softmax_rows(T* y, const T* x, int64_t rows, int64_t row, bool log) {
  using A = acc_t<T>;
  using C = compute_t<T>;
  for_each_row(rows, row, [&](int64_t r) {
    const T* in = x + r * row;
    T* out = y + r * row;
    C max = C(in[0]);
    for (int64_t i = 1; i < row; ++i) max = std::max(max, C(in[i]));
    // softmax(x) = exp(x - m) / sum(exp(x - m)) with m = max(x), so no exp overflows.
    A total = 0;
    for (int64_t i = 0; i < row; ++i) total += A(std::exp(C(in[i]) - max));
    if (log) {
      C log_total = C(std::log(total));
      for (int64_t i = 0; i < row; ++i) out[i] = T(C(in[i]) - max - log_total);
    } else {
      C inv_total = C(A(1) / total);
      for (int64_t i = 0; i < row; ++i) out[i] = T(std::exp(C(in[i]) - max) * inv_total);
    }
  });
}

template <class T>
void softmax_backward_rows(T* dx, const T* y, const T* g, int64_t rows, int64_t row, bool log) {
  using A = acc_t<T>;
  using C = compute_t<T>;
  for_each_row(rows, row, [&](int64_t r) {
    const T* yr = y + r * row;
    const T* gr = g + r * row;
    T* out = dx + r * row;
    A total = 0;  // log_softmax: sum(g); softmax: sum(g * y)
    for (int64_t i = 0; i < row; ++i) total += log ? A(C(gr[i])) : A(C(gr[i])) * A(C(yr[i]));
    C s = C(total);
    if (log) {
      for (int64_t i = 0; i < row; ++i) out[i] = T(C(gr[i]) - std::exp(C(yr[i])) * s);
    } else {
      for (int64_t i = 0; i < row; ++i) out[i] = T(C(yr[i]) * (C(gr[i]) - s));
    }
  });
}

}  // namespace

void softmax_forward(const Tensor& y, const Tensor& x, bool log) {
  const int64_t row = row_length(x);
  if (x.numel() == 0) return;
  visit_floating(x.dtype(), log ? "log_softmax" : "softmax", [&](auto tag) {
    using T = decltype(tag);
    softmax_rows<T>(y.data<T>(), x.data<T>(), x.numel() / row, row, log);
  });
}

void softmax_backward(const Tensor& dx, const Tensor& y, const Tensor& g, bool log) {
  const int64_t row = row_length(y);
  if (y.numel() == 0) return;
  visit_floating(y.dtype(), log ? "log_softmax" : "softmax", [&](auto tag) {
    using T = decltype(tag);
    softmax_backward_rows<T>(dx.data<T>(), y.data<T>(), g.data<T>(), y.numel() / row, row, log);
  });
}

}  // namespace ponder::backend::cpu
