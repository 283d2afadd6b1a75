// CUDA softmax along the last dimension of contiguous rows: a warp per row up to 1024 elements, a
// block per row beyond (vocabulary-sized rows). The forward reads a row once for its running max
// and sum (online log-sum-exp), then once more to write; the backward reads once for its row sum,
// then once more to write. Statistics are f32 (f64 for f64 tensors).
#include "backend/cuda/softmax.h"
#include "kernels/rows.cuh"

namespace ponder::backend::cuda {
namespace {
using namespace kernels;

template <bool kBlock, class T>
__global__ void softmax_forward_rows(T* y, const T* x, int64_t rows, int64_t n, bool log, bool vec) {
  using A = compute_t<T>;
  using std::exp;
  __shared__ LogSumExp<A> scratch[kWarp];
  const OnlineLogSumExp<A> op;
  const RowTeam<kBlock> team;
  for (int64_t r = team.first_row(); r < rows; r += team.row_step()) {
    const T* in = x + r * n;
    LogSumExp<A> st = op.identity();
    visit_row(0, n, team.rank(), team.size(), vec, [&](int64_t, T v) { op.add(st, static_cast<A>(v)); }, in);
    st = team.reduce(st, op, scratch);
    const A m = st.m;
    if (log) {
      const A log_total = std::log(st.s);
      map_row(y + r * n, n, team.rank(), team.size(), vec,
              [&](int64_t, T v) { return static_cast<A>(v) - m - log_total; }, in);
    } else {
      const A inv_total = A(1) / st.s;
      map_row(y + r * n, n, team.rank(), team.size(), vec,
              [&](int64_t, T v) { return exp(static_cast<A>(v) - m) * inv_total; }, in);
    }
  }
}

// softmax: dx = y * (g - sum(g * y)); log_softmax: dx = g - exp(y) * sum(g).
template <bool kBlock, class T>
__global__ void softmax_backward_rows(T* dx, const T* y, const T* g, int64_t rows, int64_t n, bool log, bool vec) {
  using A = compute_t<T>;
  using std::exp;
  __shared__ A scratch[kWarp];
  const Plus<A> op;
  const RowTeam<kBlock> team;
  for (int64_t r = team.first_row(); r < rows; r += team.row_step()) {
    const T *yr = y + r * n, *gr = g + r * n;
    A total = op.identity();
    if (log) {
      visit_row(0, n, team.rank(), team.size(), vec, [&](int64_t, T gv) { total += static_cast<A>(gv); }, gr);
    } else {
      visit_row(0, n, team.rank(), team.size(), vec,
                [&](int64_t, T yv, T gv) { total += static_cast<A>(gv) * static_cast<A>(yv); }, yr, gr);
    }
    const A s = team.reduce(total, op, scratch);
    if (log) {
      map_row(dx + r * n, n, team.rank(), team.size(), vec,
              [&](int64_t, T yv, T gv) { return static_cast<A>(gv) - exp(static_cast<A>(yv)) * s; }, yr, gr);
    } else {
      map_row(dx + r * n, n, team.rank(), team.size(), vec,
              [&](int64_t, T yv, T gv) { return static_cast<A>(yv) * (static_cast<A>(gv) - s); }, yr, gr);
    }
  }
}

int64_t row_length(const Tensor& t) { return t.dim() == 0 ? 1 : t.shape().back(); }

}  // namespace

void softmax_forward(const Tensor& y, const Tensor& x, bool log) {
  if (x.numel() == 0) return;
  const int64_t n = row_length(x), rows = x.numel() / n;
  const char* name = log ? "log_softmax" : "softmax";
  visit_floating(x.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    const RowLaunch launch = row_launch(rows, n);
    const bool vec = rows_aligned(x.data<T>(), rows, n) && rows_aligned(y.data<T>(), rows, n);
    with_team(launch, [&](auto block) {
      softmax_forward_rows<decltype(block)::value><<<launch.grid, launch.threads, 0, stream_of(x)>>>(
          y.data<T>(), x.data<T>(), rows, n, log, vec);
    });
    check_launch(name);
  });
}

void softmax_backward(const Tensor& dx, const Tensor& y, const Tensor& g, bool log) {
  if (y.numel() == 0) return;
  const int64_t n = row_length(y), rows = y.numel() / n;
  const char* name = log ? "log_softmax_backward" : "softmax_backward";
  visit_floating(y.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    const RowLaunch launch = row_launch(rows, n);
    const bool vec = rows_aligned(dx.data<T>(), rows, n) && rows_aligned(y.data<T>(), rows, n) &&
                     rows_aligned(g.data<T>(), rows, n);
    with_team(launch, [&](auto block) {
      softmax_backward_rows<decltype(block)::value><<<launch.grid, launch.threads, 0, stream_of(y)>>>(
          dx.data<T>(), y.data<T>(), g.data<T>(), rows, n, log, vec);
    });
    check_launch(name);
  });
}

}  // namespace ponder::backend::cuda
