// CUDA elementwise kernels; the scalar math is backend/math.h, shared with the CPU.
#include "backend/cuda/elementwise.h"
#include "kernels/map.cuh"

namespace ponder::backend::cuda {
namespace {
using kernels::map;

template <class D, class S>
struct Convert {
  __device__ D operator()(S v) const { return convert_value<D, S>(v); }
};

template <class D>
struct Constant {
  D value;
  __device__ D operator()() const { return value; }
};

template <class D, class S>
struct Accumulate {
  __device__ compute_t<D> operator()(D a, S b) const { return compute_t<D>(a) + compute_t<D>(compute_t<S>(b)); }
};

// a + b·scale, the scale read from device memory (so that a CUDA graph replays it with its new value).
template <class D, class S>
struct AccumulateScaled {
  const D* scale;
  __device__ compute_t<D> operator()(D a, S b) const {
    return compute_t<D>(a) + compute_t<D>(compute_t<S>(b)) * compute_t<D>(*scale);
  }
};

template <class T, UnaryOp Op>
struct Unary {
  compute_t<T> alpha;
  __device__ compute_t<T> operator()(T x) const { return unary_forward<compute_t<T>>(Op, compute_t<T>(x), alpha); }
};

template <class T, UnaryOp Op>
struct UnaryGrad {
  compute_t<T> alpha;
  __device__ compute_t<T> operator()(T x, T g) const {
    return unary_backward<compute_t<T>>(Op, compute_t<T>(x), compute_t<T>(g), alpha);
  }
};

template <class T, BinaryOp Op>
struct Binary {
  __device__ compute_t<T> operator()(T a, T b) const { return binary_forward<compute_t<T>>(Op, compute_t<T>(a), compute_t<T>(b)); }
};

template <class T>
struct Compare {
  CompareOp op;
  __device__ uint8_t operator()(T a, T b) const { return backend::compare<compute_t<T>>(op, compute_t<T>(a), compute_t<T>(b)); }
};

template <class T>
struct Select {
  __device__ T operator()(uint8_t c, T a, T b) const { return c ? a : b; }
};

}  // namespace

void copy(const Tensor& dst, const Tensor& src) {
  visit_dtype(dst.dtype(), "copy", [&](auto d) {
    using D = decltype(d);
    visit_dtype(src.dtype(), "copy", [&](auto s) {
      using S = decltype(s);
      map<D, S>("copy", dst, Convert<D, S>{}, src);
    });
  });
}

void fill(const Tensor& dst, double value) {
  visit_dtype(dst.dtype(), "fill", [&](auto d) {
    using D = decltype(d);
    map<D>("fill", dst, Constant<D>{D(static_cast<compute_t<D>>(value))});
  });
}

void add_into(const Tensor& dst, const Tensor& src, const Tensor& scale) {
  visit_floating(dst.dtype(), "add_into", [&](auto d) {
    using D = decltype(d);
    visit_floating(src.dtype(), "add_into", [&](auto s) {
      using S = decltype(s);
      if (scale.defined()) {
        map<D, D, S>("add_into", dst, AccumulateScaled<D, S>{scale.data<D>()}, dst, src);
      } else {
        map<D, D, S>("add_into", dst, Accumulate<D, S>{}, dst, src);
      }
    });
  });
}

void unary(UnaryOp op, const Tensor& out, const Tensor& x, double alpha) {
  visit_floating(x.dtype(), unary_name(op), [&](auto t) {
    using T = decltype(t);
    with_unary_op(op, [&](auto k) {
      map<T, T>(unary_name(op), out, Unary<T, decltype(k)::value>{compute_t<T>(alpha)}, x);
    });
  });
}

void unary_backward(UnaryOp op, const Tensor& grad_x, const Tensor& x, const Tensor& grad, double alpha) {
  visit_floating(x.dtype(), unary_name(op), [&](auto t) {
    using T = decltype(t);
    with_unary_op(op, [&](auto k) {
      map<T, T, T>(unary_name(op), grad_x, UnaryGrad<T, decltype(k)::value>{compute_t<T>(alpha)}, x, grad);
    });
  });
}

void binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  visit_dtype(a.dtype(), "binary", [&](auto t) {
    using T = decltype(t);
    with_binary_op(op, [&](auto k) { map<T, T, T>("binary", out, Binary<T, decltype(k)::value>{}, a, b); });
  });
}

void compare(CompareOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  visit_dtype(a.dtype(), "compare", [&](auto t) {
    using T = decltype(t);
    map<uint8_t, T, T>("compare", out, Compare<T>{op}, a, b);
  });
}

void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  visit_dtype(a.dtype(), "where", [&](auto t) {
    using T = decltype(t);
    map<T, uint8_t, T, T>("where", out, Select<T>{}, cond, a, b);
  });
}

}  // namespace ponder::backend::cuda
