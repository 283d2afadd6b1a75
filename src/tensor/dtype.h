// Element types. u8 doubles as the boolean type (comparisons return 0/1 in u8).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tensor/bfloat16.h"
#include "tensor/error.h"

namespace ponder {

enum class DType : uint8_t { f32, f64, bf16, i32, i64, u8 };

constexpr size_t element_size(DType t) {
  switch (t) {
    case DType::f64:
    case DType::i64: return 8;
    case DType::f32:
    case DType::i32: return 4;
    case DType::bf16: return 2;
    case DType::u8: return 1;
  }
  return 0;
}

constexpr std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::f64: return "f64";
    case DType::bf16: return "bf16";
    case DType::i32: return "i32";
    case DType::i64: return "i64";
    case DType::u8: return "u8";
  }
  return "?";
}

constexpr bool is_floating(DType t) { return t == DType::f32 || t == DType::f64 || t == DType::bf16; }

// Parses "f32", "float32", "bf16", ... ; throws DTypeError naming the bad string.
DType parse_dtype(std::string_view name);

// C++ type <-> DType.
template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::f64; };
template <> struct dtype_of<bf16> { static constexpr DType value = DType::bf16; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::i32; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::i64; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = DType::u8; };
template <class T> inline constexpr DType dtype_v = dtype_of<T>::value;

// Calls fn(T{}) with T the C++ type of `t`; `op` names the caller when the type is refused.
template <class Fn>
decltype(auto) visit_dtype(DType t, const char* op, Fn&& fn) {
  switch (t) {
    case DType::f32: return fn(float{});
    case DType::f64: return fn(double{});
    case DType::bf16: return fn(bf16{});
    case DType::i32: return fn(int32_t{});
    case DType::i64: return fn(int64_t{});
    case DType::u8: return fn(uint8_t{});
  }
  fail<DTypeError>(op, ": unknown dtype");
}

// Same, restricted to the floating types (f32, f64, bf16).
template <class Fn>
decltype(auto) visit_floating(DType t, const char* op, Fn&& fn) {
  switch (t) {
    case DType::f32: return fn(float{});
    case DType::f64: return fn(double{});
    case DType::bf16: return fn(bf16{});
    default: fail<DTypeError>(op, ": expected a floating dtype (f32, f64, bf16), got ", dtype_name(t));
  }
}

// Accumulation type: reductions over bf16/f32 accumulate in a wider type on the CPU.
template <class T> struct acc_type { using type = T; };
template <> struct acc_type<bf16> { using type = float; };
template <> struct acc_type<float> { using type = double; };
template <class T> using acc_t = typename acc_type<T>::type;

// Compute type for elementwise math: bf16 is computed in float.
template <class T> struct compute_type { using type = T; };
template <> struct compute_type<bf16> { using type = float; };
template <class T> using compute_t = typename compute_type<T>::type;

}  // namespace ponder
