#include "backend/cpu/matmul.h"

#include <omp.h>

#include <Eigen/Core>

#include "backend/cpu/elementwise.h"
#include "backend/cpu/reduce.h"
#include "backend/kernels.h"

namespace ponder::backend::cpu {
namespace {

template <class T>
using RowMajor = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using ColMajor = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
template <class M>
using StridedMap = Eigen::Map<const M, Eigen::Unaligned, Eigen::OuterStride<>>;

// A matrix slice whose rows or columns are contiguous maps without copying.
bool mappable(const Tensor& t) {
  int64_t rs = t.strides()[t.dim() - 2], cs = t.strides()[t.dim() - 1];
  return cs == 1 || rs == 1;
}

// One product C = A * B (C += A * B when accumulating) for row-major/col-major operands, chosen by
// the operands' strides.
template <class T>
void gemm(T* c, const T* a, int64_t ars, int64_t acs, const T* b, int64_t brs, int64_t bcs,
          int64_t m, int64_t k, int64_t n, bool accumulate) {
  Eigen::Map<RowMajor<T>> C(c, m, n);
  auto store = [&](const auto& product) {
    if (accumulate) {
      C.noalias() += product;
    } else {
      C.noalias() = product;
    }
  };
  auto with_a = [&](const auto& A) {
    if (bcs == 1) {
      store(A * StridedMap<RowMajor<T>>(b, k, n, Eigen::OuterStride<>(brs)));
    } else {
      store(A * StridedMap<ColMajor<T>>(b, k, n, Eigen::OuterStride<>(bcs)));
    }
  };
  if (acs == 1) {
    with_a(StridedMap<RowMajor<T>>(a, m, k, Eigen::OuterStride<>(ars)));
  } else {
    with_a(StridedMap<ColMajor<T>>(a, m, k, Eigen::OuterStride<>(acs)));
  }
}

// Offsets (in elements) of batch item `i` for an operand with the given batch strides.
int64_t batch_offset(int64_t i, const Shape& batch, const Strides& strides) {
  int64_t off = 0;
  for (int d = batch.size() - 1; d >= 0; --d) {
    off += (i % batch[d]) * strides[d];
    i /= batch[d];
  }
  return off;
}

template <class T>
void batched(const Tensor& out, const Tensor& a, const Tensor& b, bool accumulate) {
  const int nd = out.dim();
  const int64_t m = out.shape()[nd - 2], n = out.shape()[nd - 1], k = a.shape()[nd - 1];
  Shape batch;
  Strides as, bs;
  for (int d = 0; d < nd - 2; ++d) {
    batch.push_back(out.shape()[d]);
    as.push_back(a.strides()[d]);
    bs.push_back(b.strides()[d]);
  }
  const int64_t count = batch.product();
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  T* pc = out.data<T>();
  auto one = [&](int64_t i) {
    gemm<T>(pc + i * m * n, pa + batch_offset(i, batch, as), a.strides()[nd - 2], a.strides()[nd - 1],
            pb + batch_offset(i, batch, bs), b.strides()[nd - 2], b.strides()[nd - 1], m, k, n, accumulate);
  };
  // Many small products: one per thread. Few large ones: Eigen parallelises each product.
  if (count >= omp_get_max_threads() && count > 1) {
    int eigen_threads = Eigen::nbThreads();
    Eigen::setNbThreads(1);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < count; ++i) one(i);
    Eigen::setNbThreads(eigen_threads);
  } else {
    for (int64_t i = 0; i < count; ++i) one(i);
  }
}

// t as f32: bf16 operands are multiplied in f32.
Tensor widened(const Tensor& t) {
  if (t.dtype() == DType::f32) return t;
  Tensor w = Tensor::empty(t.shape(), {DType::f32, t.device()});
  backend::copy(w, t);
  return w;
}

}  // namespace

void matmul(const Tensor& out, const Tensor& a, const Tensor& b, bool accumulate) {
  const bool wide_out = out.dtype() == DType::f32 && a.dtype() == DType::bf16;
  PONDER_CHECK(out.dtype() == a.dtype() || wide_out, DTypeError, "matmul: a ", dtype_name(a.dtype()),
               " product cannot be written to ", dtype_name(out.dtype()));
  if (out.numel() == 0) return;
  if (a.shape()[a.dim() - 1] == 0) {
    if (!accumulate) backend::fill(out, 0.0);
    return;
  }
  Tensor ma = mappable(a) ? a : backend::contiguous(a);
  Tensor mb = mappable(b) ? b : backend::contiguous(b);
  switch (a.dtype()) {
    case DType::f32: batched<float>(out, ma, mb, accumulate); break;
    case DType::f64: batched<double>(out, ma, mb, accumulate); break;
    case DType::bf16: {
      // A bf16 result is rounded once, after the accumulation.
      Tensor wide = wide_out     ? out
                    : accumulate ? widened(out)
                                 : Tensor::empty(out.shape(), {DType::f32, out.device()});
      batched<float>(wide, widened(ma), widened(mb), accumulate);
      if (!wide_out) backend::copy(out, wide);
      break;
    }
    default: fail<DTypeError>("matmul: expected a floating dtype, got ", dtype_name(out.dtype()));
  }
}

void linear(const Tensor& out, const Tensor& x, const Tensor& weight, const Tensor& bias) {
  matmul(out, x, transposed(weight));
  // The bias is added to the rounded product, as matmul followed by add would.
  if (bias.defined()) add_into(out, repeated_rows(bias, out.size(0)));
}

void linear_backward(const Tensor& grad_x, const Tensor& grad_weight, const Tensor& grad_bias,
                     const Tensor& grad, const Tensor& x, const Tensor& weight, bool accumulate_x,
                     bool accumulate_weight) {
  if (grad_x.defined()) matmul(grad_x, grad, weight, accumulate_x);
  if (grad_weight.defined()) matmul(grad_weight, transposed(grad), x, accumulate_weight);
  if (grad_bias.defined()) {
    const int64_t n = grad_bias.size(0);
    reduce(ReduceOp::sum, grad_bias.as_strided({1, n}, {n, 1}, grad_bias.offset()), grad, {0});
  }
}

void linear_weight_grads(const TensorList& grad_weights, const TensorList& grads, const Tensor& x, bool accumulate) {
  for (size_t i = 0; i < grads.size(); ++i) matmul(grad_weights[i], transposed(grads[i]), x, accumulate);
}

}  // namespace ponder::backend::cpu
