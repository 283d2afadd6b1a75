// Scalar math of the elementwise ops, shared by the CPU kernels and the CUDA kernels so both
// compute the same function. Each unary op defines its value f(x) and its derivative-weighted
// gradient g * f'(x); `alpha` carries the op's scalar parameter (the exponent of pow).
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "tensor/dtype.h"
#include "tensor/host_device.h"

namespace ponder::backend {

enum class UnaryOp : uint8_t {
  neg, exp, log, sqrt, rsqrt, abs, tanh, sigmoid, silu, gelu, relu, relu2, pow, sin, cos, square,
};

enum class BinaryOp : uint8_t { add, sub, mul, div, maximum, minimum };
enum class CompareOp : uint8_t { eq, ne, lt, le, gt, ge };

const char* unary_name(UnaryOp op);

// Calls fn(std::integral_constant<UnaryOp, op>) so kernels specialise their inner loop per op.
template <class Fn>
decltype(auto) with_unary_op(UnaryOp op, Fn&& fn) {
  switch (op) {
    case UnaryOp::neg: return fn(std::integral_constant<UnaryOp, UnaryOp::neg>{});
    case UnaryOp::exp: return fn(std::integral_constant<UnaryOp, UnaryOp::exp>{});
    case UnaryOp::log: return fn(std::integral_constant<UnaryOp, UnaryOp::log>{});
    case UnaryOp::sqrt: return fn(std::integral_constant<UnaryOp, UnaryOp::sqrt>{});
    case UnaryOp::rsqrt: return fn(std::integral_constant<UnaryOp, UnaryOp::rsqrt>{});
    case UnaryOp::abs: return fn(std::integral_constant<UnaryOp, UnaryOp::abs>{});
    case UnaryOp::tanh: return fn(std::integral_constant<UnaryOp, UnaryOp::tanh>{});
    case UnaryOp::sigmoid: return fn(std::integral_constant<UnaryOp, UnaryOp::sigmoid>{});
    case UnaryOp::silu: return fn(std::integral_constant<UnaryOp, UnaryOp::silu>{});
    case UnaryOp::gelu: return fn(std::integral_constant<UnaryOp, UnaryOp::gelu>{});
    case UnaryOp::relu: return fn(std::integral_constant<UnaryOp, UnaryOp::relu>{});
    case UnaryOp::relu2: return fn(std::integral_constant<UnaryOp, UnaryOp::relu2>{});
    case UnaryOp::pow: return fn(std::integral_constant<UnaryOp, UnaryOp::pow>{});
    case UnaryOp::sin: return fn(std::integral_constant<UnaryOp, UnaryOp::sin>{});
    case UnaryOp::cos: return fn(std::integral_constant<UnaryOp, UnaryOp::cos>{});
    case UnaryOp::square: return fn(std::integral_constant<UnaryOp, UnaryOp::square>{});
  }
  return fn(std::integral_constant<UnaryOp, UnaryOp::neg>{});
}

// Calls fn(std::integral_constant<BinaryOp, op>) so kernels specialise their inner loop per op.
template <class Fn>
decltype(auto) with_binary_op(BinaryOp op, Fn&& fn) {
  switch (op) {
    case BinaryOp::add: return fn(std::integral_constant<BinaryOp, BinaryOp::add>{});
    case BinaryOp::sub: return fn(std::integral_constant<BinaryOp, BinaryOp::sub>{});
    case BinaryOp::mul: return fn(std::integral_constant<BinaryOp, BinaryOp::mul>{});
    case BinaryOp::div: return fn(std::integral_constant<BinaryOp, BinaryOp::div>{});
    case BinaryOp::maximum: return fn(std::integral_constant<BinaryOp, BinaryOp::maximum>{});
    case BinaryOp::minimum: return fn(std::integral_constant<BinaryOp, BinaryOp::minimum>{});
  }
  return fn(std::integral_constant<BinaryOp, BinaryOp::add>{});
}

template <class T>
PONDER_HOST_DEVICE T unary_forward(UnaryOp op, T x, T alpha) {
  using std::abs, std::exp, std::log, std::sqrt, std::tanh, std::erf, std::pow, std::sin, std::cos;
  switch (op) {
    case UnaryOp::neg: return -x;
    case UnaryOp::exp: return exp(x);
    case UnaryOp::log: return log(x);
    case UnaryOp::sqrt: return sqrt(x);
    case UnaryOp::rsqrt: return T(1) / sqrt(x);
    case UnaryOp::abs: return abs(x);
    case UnaryOp::tanh: return tanh(x);
    case UnaryOp::sigmoid: return T(1) / (T(1) + exp(-x));
    case UnaryOp::silu: return x / (T(1) + exp(-x));
    case UnaryOp::gelu: return T(0.5) * x * (T(1) + erf(x * T(0.70710678118654752440)));
    case UnaryOp::relu: return x > T(0) ? x : T(0);
    case UnaryOp::relu2: return x > T(0) ? x * x : T(0);
    case UnaryOp::pow: return pow(x, alpha);
    case UnaryOp::sin: return sin(x);
    case UnaryOp::cos: return cos(x);
    case UnaryOp::square: return x * x;
  }
  return x;
}

// g * f'(x); y = f(x) is not needed by any op here (recomputing is cheaper than saving it).
template <class T>
PONDER_HOST_DEVICE T unary_backward(UnaryOp op, T x, T g, T alpha) {
  using std::exp, std::log, std::sqrt, std::tanh, std::pow, std::sin, std::cos;
  switch (op) {
    case UnaryOp::neg: return -g;
    case UnaryOp::exp: return g * exp(x);
    case UnaryOp::log: return g / x;
    case UnaryOp::sqrt: return g / (T(2) * sqrt(x));
    case UnaryOp::rsqrt: return -g / (T(2) * x * sqrt(x));
    case UnaryOp::abs: return x > T(0) ? g : (x < T(0) ? -g : T(0));
    case UnaryOp::tanh: {
      T t = tanh(x);
      return g * (T(1) - t * t);
    }
    case UnaryOp::sigmoid: {
      T s = T(1) / (T(1) + exp(-x));
      return g * s * (T(1) - s);
    }
    case UnaryOp::silu: {
      T s = T(1) / (T(1) + exp(-x));
      return g * s * (T(1) + x * (T(1) - s));
    }
    case UnaryOp::gelu: {
      T cdf = T(0.5) * (T(1) + std::erf(x * T(0.70710678118654752440)));
      T pdf = exp(T(-0.5) * x * x) * T(0.39894228040143267794);
      return g * (cdf + x * pdf);
    }
    case UnaryOp::relu: return x > T(0) ? g : T(0);
    case UnaryOp::relu2: return x > T(0) ? T(2) * x * g : T(0);
    case UnaryOp::pow: return alpha == T(0) ? T(0) : g * alpha * pow(x, alpha - T(1));
    case UnaryOp::sin: return g * cos(x);
    case UnaryOp::cos: return -g * sin(x);
    case UnaryOp::square: return T(2) * x * g;
  }
  return g;
}

// Element conversion for copies between dtypes. Floating values become integers by truncation
// toward zero through int64 and then wrap to the narrower type, so out-of-range values convert the
// same way on every device (a direct float -> uint8 conversion of -1.5 is undefined behaviour).
template <class D, class S>
PONDER_HOST_DEVICE D convert_value(S v) {
  using C = compute_t<S>;
  if constexpr (std::is_integral_v<D> && !std::is_integral_v<C>) {
    return static_cast<D>(static_cast<int64_t>(C(v)));
  } else {
    return D(C(v));
  }
}

template <class T>
PONDER_HOST_DEVICE T binary_forward(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::add: return a + b;
    case BinaryOp::sub: return a - b;
    case BinaryOp::mul: return a * b;
    case BinaryOp::div: return a / b;
    case BinaryOp::maximum: return a > b || a != a ? a : b;  // NaN propagates
    case BinaryOp::minimum: return a < b || a != a ? a : b;
  }
  return a;
}

template <class T>
PONDER_HOST_DEVICE bool compare(CompareOp op, T a, T b) {
  switch (op) {
    case CompareOp::eq: return a == b;
    case CompareOp::ne: return a != b;
    case CompareOp::lt: return a < b;
    case CompareOp::le: return a <= b;
    case CompareOp::gt: return a > b;
    case CompareOp::ge: return a >= b;
  }
  return false;
}

}  // namespace ponder::backend
