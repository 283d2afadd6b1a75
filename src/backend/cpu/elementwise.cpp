#include "backend/cpu/elementwise.h"

#include <tuple>
#include <utility>

#include "backend/cpu/strided_loop.h"

namespace ponder::backend::cpu {
namespace {

template <class T>
inline T& at(char* p, int64_t i, int64_t stride_bytes) {
  return *reinterpret_cast<T*>(p + i * stride_bytes);
}

// Applies out[i] = fn(inputs[i]...) over same-shaped strided operands of types In...; fn works in
// the compute type (float for bf16) and its result is converted to Out.
template <class Out, class... In, class Fn, class... Ts>
void map(const Tensor& out, Fn fn, const Ts&... inputs) {
  static_assert(sizeof...(In) == sizeof...(Ts));
  constexpr int N = 1 + sizeof...(In);
  for_each_run<N>({out, inputs...}, [&](std::array<char*, N> p, int64_t n, std::array<int64_t, N> s) {
    [&]<size_t... I>(std::index_sequence<I...>) {
      bool dense = s[0] == int64_t(sizeof(Out)) && ((s[1 + I] == int64_t(sizeof(In))) && ...);
      if (dense) {  // plain pointers so the compiler can vectorise
        Out* o = reinterpret_cast<Out*>(p[0]);
        std::tuple<const In*...> src{reinterpret_cast<const In*>(p[1 + I])...};
        for (int64_t i = 0; i < n; ++i) o[i] = Out(fn(std::get<I>(src)[i]...));
      } else {
        for (int64_t i = 0; i < n; ++i) at<Out>(p[0], i, s[0]) = Out(fn(at<In>(p[1 + I], i, s[1 + I])...));
      }
    }(std::index_sequence_for<In...>{});
  });
}

}  // namespace

void copy(const Tensor& dst, const Tensor& src) {
  visit_dtype(dst.dtype(), "copy", [&](auto d) {
    using D = decltype(d);
    visit_dtype(src.dtype(), "copy", [&](auto s) {
      using S = decltype(s);
      map<D, S>(dst, [](S v) { return convert_value<D, S>(v); }, src);
    });
  });
}

void fill(const Tensor& dst, double value) {
  visit_dtype(dst.dtype(), "fill", [&](auto d) {
    using D = decltype(d);
    D v = D(static_cast<compute_t<D>>(value));
    map<D>(dst, [v]() { return v; });
  });
}

void add_into(const Tensor& dst, const Tensor& src, const Tensor& scale) {
  visit_floating(dst.dtype(), "add_into", [&](auto d) {
    using D = decltype(d);
    using C = compute_t<D>;
    const C k = scale.defined() ? C(*scale.data<D>()) : C(1);
    visit_floating(src.dtype(), "add_into", [&](auto s) {
      using S = decltype(s);
      if (scale.defined()) {
        map<D, D, S>(dst, [k](D a, S b) { return C(a) + C(compute_t<S>(b)) * k; }, dst, src);
      } else {
        map<D, D, S>(dst, [](D a, S b) { return C(a) + C(compute_t<S>(b)); }, dst, src);
      }
    });
  });
}

void unary(UnaryOp op, const Tensor& out, const Tensor& x, double alpha) {
  visit_floating(x.dtype(), unary_name(op), [&](auto t) {
    using T = decltype(t);
    using C = compute_t<T>;
    C a = C(alpha);
    with_unary_op(op, [&](auto k) {
      map<T, T>(out, [a](T v) { return unary_forward<C>(decltype(k)::value, C(v), a); }, x);
    });
  });
}

void unary_backward(UnaryOp op, const Tensor& grad_x, const Tensor& x, const Tensor& grad,
                    double alpha) {
  visit_floating(x.dtype(), unary_name(op), [&](auto t) {
    using T = decltype(t);
    using C = compute_t<T>;
    C a = C(alpha);
    with_unary_op(op, [&](auto k) {
      map<T, T, T>(grad_x, [a](T v, T g) { return unary_backward<C>(decltype(k)::value, C(v), C(g), a); },
                   x, grad);
    });
  });
}

void binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  visit_dtype(a.dtype(), "binary", [&](auto t) {
    using T = decltype(t);
    using C = compute_t<T>;
    with_binary_op(op, [&](auto k) {
      map<T, T, T>(out, [](T x, T y) { return binary_forward<C>(decltype(k)::value, C(x), C(y)); }, a, b);
    });
  });
}

void compare(CompareOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  visit_dtype(a.dtype(), "compare", [&](auto t) {
    using T = decltype(t);
    using C = compute_t<T>;
    map<uint8_t, T, T>(out, [op](T x, T y) { return uint8_t(backend::compare<C>(op, C(x), C(y))); }, a, b);
  });
}

void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  visit_dtype(a.dtype(), "where", [&](auto t) {
    using T = decltype(t);
    map<T, uint8_t, T, T>(out, [](uint8_t c, T x, T y) { return c ? x : y; }, cond, a, b);
  });
}

}  // namespace ponder::backend::cpu
