// CUDA cross-entropy over contiguous logits rows [rows, V]: a block per row (a warp for rows of up
// to 1024 classes), 16-byte loads where rows are aligned, f32 math (f64 for f64 logits).
#include "backend/cuda/cross_entropy.h"
#include "kernels/rows.cuh"

namespace ponder::backend::cuda {
namespace {
using namespace kernels;

// Calls fn(T{}, I{}) with T the logits' element type and I the targets' index type.
template <class Fn>
void visit_logits_and_targets(const Tensor& logits, const Tensor& targets, Fn fn) {
  visit_floating(logits.dtype(), "cross_entropy", [&](auto t) {
    switch (targets.dtype()) {
      case DType::i32: return fn(t, int32_t{});
      case DType::i64: return fn(t, int64_t{});
      default: fail<DTypeError>("cross_entropy: targets must be i64 or i32, got ", describe(targets));
    }
  });
}

// loss[r] = lse[r] - x[r, t] with lse[r] = log(sum(exp(x[r, :]))) from the online log-sum-exp.
template <bool kBlock, class T, class I>
__global__ void cross_entropy_forward_rows(compute_t<T>* loss, compute_t<T>* lse, const T* logits, const I* targets,
                                           int64_t rows, int64_t vocab, int64_t ignore_index, bool vec) {
  using A = compute_t<T>;
  __shared__ LogSumExp<A> scratch[kWarp];
  const OnlineLogSumExp<A> op;
  const RowTeam<kBlock> team;
  for (int64_t r = team.first_row(); r < rows; r += team.row_step()) {
    const int64_t t = targets[r];
    if (t == ignore_index) {  // the same for the whole team
      if (team.rank() == 0) loss[r] = lse[r] = A(0);
      continue;
    }
    const T* x = logits + r * vocab;
    LogSumExp<A> st = op.identity();
    visit_row(0, vocab, team.rank(), team.size(), vec, [&](int64_t, T v) { op.add(st, static_cast<A>(v)); }, x);
    st = team.reduce(st, op, scratch);
    if (team.rank() == 0) {
      const A row_lse = st.m + std::log(st.s);
      lse[r] = row_lse;
      // A target outside the row can only come from a deferred check (backend/id_check.h): NaN.
      loss[r] = t >= 0 && t < vocab ? row_lse - static_cast<A>(x[t]) : A(NAN);
    }
  }
}

// dx[r, i] = (exp(x[r, i] - lse[r]) - [i == t]) * row_scale[r]; zero rows for ignored targets.
template <bool kBlock, class T, class I>
__global__ void cross_entropy_backward_rows(T* dlogits, const T* logits, const compute_t<T>* lse, const I* targets,
                                            const compute_t<T>* row_scale, int64_t rows, int64_t vocab,
                                            int64_t ignore_index, bool vec) {
  using A = compute_t<T>;
  using std::exp;
  const RowTeam<kBlock> team;
  for (int64_t r = team.first_row(); r < rows; r += team.row_step()) {
    const int64_t t = targets[r];
    T* dx = dlogits + r * vocab;
    if (t == ignore_index) {
      map_row(dx, vocab, team.rank(), team.size(), vec, [](int64_t) { return A(0); });
      continue;
    }
    const A row_lse = lse[r], scale = row_scale[r];
    map_row(dx, vocab, team.rank(), team.size(), vec,
            [&](int64_t i, T v) { return (exp(static_cast<A>(v) - row_lse) - A(i == t ? 1 : 0)) * scale; },
            logits + r * vocab);
  }
}

}  // namespace

void cross_entropy_forward(const Tensor& loss, const Tensor& lse, const Tensor& logits, const Tensor& targets,
                           int64_t ignore_index) {
  const int64_t rows = targets.numel(), vocab = logits.shape().back();
  visit_logits_and_targets(logits, targets, [&](auto t, auto i) {
    using T = decltype(t);
    using I = decltype(i);
    using A = compute_t<T>;
    if (rows == 0) return;
    const RowLaunch launch = row_launch(rows, vocab);
    const bool vec = rows_aligned(logits.data<T>(), rows, vocab);
    with_team(launch, [&](auto block) {
      cross_entropy_forward_rows<decltype(block)::value><<<launch.grid, launch.threads, 0, stream_of(logits)>>>(
          loss.data<A>(), lse.data<A>(), logits.data<T>(), targets.data<I>(), rows, vocab, ignore_index, vec);
    });
    check_launch("cross_entropy");
  });
}

void cross_entropy_backward(const Tensor& dlogits, const Tensor& logits, const Tensor& lse, const Tensor& targets,
                            const Tensor& row_scale, int64_t ignore_index) {
  const int64_t rows = targets.numel(), vocab = logits.shape().back();
  if (rows == 0) return;
  visit_logits_and_targets(logits, targets, [&](auto t, auto i) {
    using T = decltype(t);
    using I = decltype(i);
    using A = compute_t<T>;
    const RowLaunch launch = row_launch(rows, vocab);
    const bool vec = rows_aligned(logits.data<T>(), rows, vocab) && rows_aligned(dlogits.data<T>(), rows, vocab);
    with_team(launch, [&](auto block) {
      cross_entropy_backward_rows<decltype(block)::value><<<launch.grid, launch.threads, 0, stream_of(logits)>>>(
          dlogits.data<T>(), logits.data<T>(), lse.data<A>(), targets.data<I>(), row_scale.data<A>(), rows, vocab,
          ignore_index, vec);
    });
    check_launch("cross_entropy_backward");
  });
}

}  // namespace ponder::backend::cuda
