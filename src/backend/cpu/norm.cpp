#include "backend/cpu/norm.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "backend/cpu/strided_loop.h"

namespace ponder::backend::cpu {
namespace {

// Columns per task when summing the parameter gradients over rows.
constexpr int64_t kColumnBlock = 32;

template <class T>
acc_t<T> widen(T v) {
  return acc_t<T>(compute_t<T>(v));
}

template <class T>
T narrow(acc_t<T> v) {
  return T(compute_t<T>(v));
}

template <class T>
T* data_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

// One normalisation problem as typed pointers: `rows` rows of length `d`. RMSNorm is the
// uncentred case (mean == nullptr, the mean taken as zero); absent weight/bias are nullptr.
template <class T>
struct NormRows {
  using A = acc_t<T>;
  int64_t rows = 0, d = 0;
  const T* x = nullptr;
  const T* weight = nullptr;
  const T* bias = nullptr;
  const A* mean = nullptr;
  const A* rstd = nullptr;
  bool x_is_xhat = false;  // x holds the output of an unweighted RMSNorm

  bool centered() const { return mean != nullptr; }
  A mean_of(int64_t r) const { return centered() ? mean[r] : A(0); }
  A weight_at(int64_t i) const { return weight ? widen(weight[i]) : A(1); }
  // xhat = (x - mean) * rstd
  A xhat(int64_t r, int64_t i) const {
    return x_is_xhat ? widen(x[r * d + i]) : (widen(x[r * d + i]) - mean_of(r)) * rstd[r];
  }
  bool parallel() const { return rows * d > kParallelGrain; }
};

template <class T>
NormRows<T> norm_rows(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& mean,
                      const Tensor& rstd) {
  NormRows<T> p;
  p.rows = rstd.numel();
  p.d = x.shape().back();
  p.x = x.data<T>();
  p.weight = data_or_null<T>(weight);
  p.bias = data_or_null<T>(bias);
  p.mean = data_or_null<acc_t<T>>(mean);
  p.rstd = rstd.data<acc_t<T>>();
  return p;
}

// Two passes per row (mean, then the variance about it) keep the statistics accurate.
template <class T>
void forward_rows(const NormRows<T>& p, T* y, acc_t<T>* mean, acc_t<T>* rstd, double eps) {
  using A = acc_t<T>;
#pragma omp parallel for schedule(static) if (p.parallel() && p.rows > 1)
  for (int64_t r = 0; r < p.rows; ++r) {
    const T* xr = p.x + r * p.d;
    A mu = 0;
    if (mean) {
      for (int64_t i = 0; i < p.d; ++i) mu += widen(xr[i]);
      mu /= A(p.d);
      mean[r] = mu;
    }
    A squares = 0;
    for (int64_t i = 0; i < p.d; ++i) squares += (widen(xr[i]) - mu) * (widen(xr[i]) - mu);
    const A rs = A(1) / std::sqrt(squares / A(p.d) + A(eps));
    rstd[r] = rs;
    for (int64_t i = 0; i < p.d; ++i) {
      A v = (widen(xr[i]) - mu) * rs * p.weight_at(i);
      if (p.bias) v += widen(p.bias[i]);
      y[r * p.d + i] = narrow<T>(v);
    }
  }
}

// With gw = g * weight: dx = rstd * (gw - mean(gw) - xhat * mean(gw * xhat)); RMSNorm drops the
// mean(gw) term because its forward subtracts no mean.
template <class T>
void input_grad_rows(const NormRows<T>& p, T* grad_x, const T* g) {
  using A = acc_t<T>;
#pragma omp parallel for schedule(static) if (p.parallel() && p.rows > 1)
  for (int64_t r = 0; r < p.rows; ++r) {
    const T* gr = g + r * p.d;
    A sum_gw = 0, sum_gw_xhat = 0;
    for (int64_t i = 0; i < p.d; ++i) {
      A gw = widen(gr[i]) * p.weight_at(i);
      sum_gw += gw;
      sum_gw_xhat += gw * p.xhat(r, i);
    }
    const A mean_gw = p.centered() ? sum_gw / A(p.d) : A(0);
    const A mean_gw_xhat = sum_gw_xhat / A(p.d);
    for (int64_t i = 0; i < p.d; ++i) {
      A gw = widen(gr[i]) * p.weight_at(i);
      grad_x[r * p.d + i] = narrow<T>(p.rstd[r] * (gw - mean_gw - p.xhat(r, i) * mean_gw_xhat));
    }
  }
}

// dweight = sum over rows of g * xhat, dbias = sum over rows of g. Threads own disjoint column
// blocks and each column adds its rows in order, so the sums do not depend on the thread count.
template <class T>
void param_grads(const NormRows<T>& p, T* grad_weight, T* grad_bias, const T* g) {
  using A = acc_t<T>;
  const int64_t blocks = (p.d + kColumnBlock - 1) / kColumnBlock;
#pragma omp parallel for schedule(static) if (p.parallel() && blocks > 1)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t j0 = b * kColumnBlock, j1 = std::min(p.d, j0 + kColumnBlock);
    std::array<A, kColumnBlock> sum_g_xhat{}, sum_g{};
    for (int64_t r = 0; r < p.rows; ++r) {
      for (int64_t j = j0; j < j1; ++j) {
        A gv = widen(g[r * p.d + j]);
        sum_g_xhat[j - j0] += gv * p.xhat(r, j);
        sum_g[j - j0] += gv;
      }
    }
    for (int64_t j = j0; j < j1; ++j) {
      if (grad_weight) grad_weight[j] = narrow<T>(sum_g_xhat[j - j0]);
      if (grad_bias) grad_bias[j] = narrow<T>(sum_g[j - j0]);
    }
  }
}

// Shared by both norms: an undefined `mean` selects RMSNorm.
void norm_forward(const char* op, const Tensor& y, const Tensor& mean, const Tensor& rstd,
                  const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  visit_floating(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    // The statistics are outputs here: forward_rows writes them through `mean` and `rstd`.
    NormRows<T> p = norm_rows<T>(x, weight, bias, Tensor(), rstd);
    forward_rows<T>(p, y.data<T>(), data_or_null<acc_t<T>>(mean), rstd.data<acc_t<T>>(), eps);
  });
}

void norm_backward(const char* op, const Tensor& grad_x, const Tensor& grad_weight,
                   const Tensor& grad_bias, const Tensor& grad, const Tensor& x, const Tensor& weight,
                   const Tensor& mean, const Tensor& rstd, bool x_is_output = false) {
  visit_floating(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    NormRows<T> p = norm_rows<T>(x, weight, Tensor(), mean, rstd);
    p.x_is_xhat = x_is_output;
    if (grad_x.defined()) input_grad_rows<T>(p, grad_x.data<T>(), grad.data<T>());
    if (grad_weight.defined() || grad_bias.defined()) {
      param_grads<T>(p, data_or_null<T>(grad_weight), data_or_null<T>(grad_bias), grad.data<T>());
    }
  });
}

}  // namespace

void rms_norm_forward(const Tensor& y, const Tensor& rstd, const Tensor& x, const Tensor& weight,
                      double eps) {
  norm_forward("rms_norm", y, Tensor(), rstd, x, weight, Tensor(), eps);
}

void rms_norm_backward(const Tensor& grad_x, const Tensor& grad_weight, const Tensor& grad,
                       const Tensor& x, const Tensor& weight, const Tensor& rstd, bool x_is_output) {
  PONDER_CHECK(!x_is_output || !weight.defined(), ValueError,
               "rms_norm_backward: only an unweighted norm's output is its normalised input");
  norm_backward("rms_norm", grad_x, grad_weight, Tensor(), grad, x, weight, Tensor(), rstd, x_is_output);
}

void layer_norm_forward(const Tensor& y, const Tensor& mean, const Tensor& rstd, const Tensor& x,
                        const Tensor& weight, const Tensor& bias, double eps) {
  norm_forward("layer_norm", y, mean, rstd, x, weight, bias, eps);
}

void layer_norm_backward(const Tensor& grad_x, const Tensor& grad_weight, const Tensor& grad_bias,
                         const Tensor& grad, const Tensor& x, const Tensor& weight,
                         const Tensor& mean, const Tensor& rstd) {
  norm_backward("layer_norm", grad_x, grad_weight, grad_bias, grad, x, weight, mean, rstd);
}

}  // namespace ponder::backend::cpu
