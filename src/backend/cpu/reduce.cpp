#include "backend/cpu/reduce.h"

#include <algorithm>
#include <cmath>

#include "backend/kernels.h"

namespace ponder::backend {

Tensor reduced_dims_last(const Tensor& x, const IntVec& dims) {
  Shape shape;
  Strides strides;
  for (int i = 0; i < x.dim(); ++i) {
    if (std::find(dims.begin(), dims.end(), i) != dims.end()) continue;
    shape.push_back(x.shape()[i]);
    strides.push_back(x.strides()[i]);
  }
  for (int64_t d : dims) {
    shape.push_back(x.shape()[static_cast<int>(d)]);
    strides.push_back(x.strides()[static_cast<int>(d)]);
  }
  return backend::contiguous(x.as_strided(shape, strides, x.offset()));
}

}  // namespace ponder::backend

namespace ponder::backend::cpu {
namespace {

template <class T, class Out>
void reduce_rows(ReduceOp op, Out* out, const T* in, int64_t rows, int64_t row) {
  using A = acc_t<T>;
  using C = compute_t<T>;
#pragma omp parallel for schedule(static) if (rows * row > 32768 && rows > 1)
  for (int64_t r = 0; r < rows; ++r) {
    const T* p = in + r * row;
    switch (op) {
      case ReduceOp::sum: {
        A s = 0;
        for (int64_t i = 0; i < row; ++i) s += A(C(p[i]));
        out[r] = Out(static_cast<C>(s));
        break;
      }
      case ReduceOp::sum_squares: {
        A s = 0;
        for (int64_t i = 0; i < row; ++i) s += A(C(p[i])) * A(C(p[i]));
        out[r] = Out(static_cast<C>(s));
        break;
      }
      case ReduceOp::max:
      case ReduceOp::argmax: {
        C best = C(p[0]);
        int64_t at = 0;
        for (int64_t i = 1; i < row; ++i) {
          C v = C(p[i]);
          if (v > best || (v != v && best == best)) {  // NaN wins, as in PyTorch
            best = v;
            at = i;
          }
        }
        if (op == ReduceOp::max) {
          out[r] = Out(best);
        } else {
          out[r] = Out(at);
        }
        break;
      }
    }
  }
}

}  // namespace

void reduce(ReduceOp op, const Tensor& out, const Tensor& x, const IntVec& dims) {
  Tensor rows = reduced_dims_last(x, dims);
  const int64_t row = [&] {
    int64_t n = 1;
    for (int64_t d : dims) n *= x.shape()[static_cast<int>(d)];
    return n;
  }();
  const int64_t count = out.numel();
  visit_dtype(x.dtype(), "reduce", [&](auto tag) {
    using T = decltype(tag);
    if (op == ReduceOp::argmax) {
      reduce_rows<T>(op, out.data<int64_t>(), rows.data<T>(), count, row);
    } else {
      reduce_rows<T>(op, out.data<T>(), rows.data<T>(), count, row);
    }
  });
}

}  // namespace ponder::backend::cpu
