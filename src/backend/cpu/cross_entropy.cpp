#include "backend/cpu/cross_entropy.h"

#include <algorithm>
#include <cmath>

namespace ponder::backend::cpu {
namespace {

// Rows are independent, so splitting them across threads keeps results deterministic.
constexpr int64_t kParallelWork = 32768;

// Calls fn(T{}, I{}) with T the logits' element type and I the targets' index type.
template <class Fn>
void visit_logits_and_targets(const Tensor& logits, const Tensor& targets, Fn fn) {
  visit_floating(logits.dtype(), "cross_entropy", [&](auto t) {
    switch (targets.dtype()) {
      case DType::i32: return fn(t, int32_t{});
      case DType::i64: return fn(t, int64_t{});
      default:
        fail<DTypeError>("cross_entropy: targets must be i64 or i32, got ", describe(targets));
    }
  });
}

// log(sum(exp(x))) = m + log(sum(exp(x - m))) with m = max(x), so no exp overflows.
template <class T>
acc_t<T> log_sum_exp(const T* x, int64_t n) {
  using A = acc_t<T>;
  using C = compute_t<T>;
  C max = C(x[0]);
  for (int64_t i = 1; i < n; ++i) max = std::max(max, C(x[i]));
  A total = 0;
  for (int64_t i = 0; i < n; ++i) total += A(std::exp(C(x[i]) - max));
  return A(max) + std::log(total);
}

template <class T, class I>
void forward_rows(compute_t<T>* loss, compute_t<T>* lse, const T* logits, const I* targets,
                  int64_t rows, int64_t vocab, int64_t ignore_index) {
  using L = compute_t<T>;
#pragma omp parallel for schedule(static) if (rows * vocab > kParallelWork && rows > 1)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t t = targets[r];
    if (t == ignore_index) {
      loss[r] = 0;
      lse[r] = 0;
      continue;
    }
    const T* x = logits + r * vocab;
    const acc_t<T> row_lse = log_sum_exp(x, vocab);
    lse[r] = L(row_lse);
    loss[r] = L(row_lse - acc_t<T>(compute_t<T>(x[t])));
  }
}

template <class T, class I>
void backward_rows(T* dlogits, const T* logits, const compute_t<T>* lse, const I* targets,
                   const compute_t<T>* row_scale, int64_t rows, int64_t vocab, int64_t ignore_index) {
  using L = compute_t<T>;
#pragma omp parallel for schedule(static) if (rows * vocab > kParallelWork && rows > 1)
  for (int64_t r = 0; r < rows; ++r) {
    T* dx = dlogits + r * vocab;
    const int64_t t = targets[r];
    if (t == ignore_index) {
      std::fill(dx, dx + vocab, T(L(0)));
      continue;
    }
    const T* x = logits + r * vocab;
    const L scale = row_scale[r];
    // Each element is read before it is written, so dlogits may be logits itself.
    for (int64_t i = 0; i < vocab; ++i) dx[i] = T((std::exp(L(x[i]) - lse[r]) - L(i == t ? 1 : 0)) * scale);
  }
}

}  // namespace

void cross_entropy_forward(const Tensor& loss, const Tensor& lse, const Tensor& logits,
                           const Tensor& targets, int64_t ignore_index) {
  const int64_t rows = targets.numel(), vocab = logits.shape().back();
  visit_logits_and_targets(logits, targets, [&](auto t, auto i) {
    using T = decltype(t);
    using I = decltype(i);
    using L = compute_t<T>;
    forward_rows<T, I>(loss.data<L>(), lse.data<L>(), logits.data<T>(), targets.data<I>(), rows,
                       vocab, ignore_index);
  });
}

void cross_entropy_backward(const Tensor& dlogits, const Tensor& logits, const Tensor& lse,
                            const Tensor& targets, const Tensor& row_scale, int64_t ignore_index) {
  const int64_t rows = targets.numel(), vocab = logits.shape().back();
  visit_logits_and_targets(logits, targets, [&](auto t, auto i) {
    using T = decltype(t);
    using I = decltype(i);
    using L = compute_t<T>;
    backward_rows<T, I>(dlogits.data<T>(), logits.data<T>(), lse.data<L>(), targets.data<I>(),
                        row_scale.data<L>(), rows, vocab, ignore_index);
  });
}

}  // namespace ponder::backend::cpu
