// bfloat16 storage type for host code: 1 sign, 8 exponent, 7 mantissa bits (the top half of an
// IEEE float). Arithmetic happens in float; conversion rounds to nearest even like CUDA's
// __float2bfloat16_rn, so CPU and GPU produce the same bits.
#pragma once

#include <bit>
#include <cstdint>
#include <cmath>

namespace ponder {

struct bf16 {
  uint16_t bits = 0;

  bf16() = default;
  bf16(float f) : bits(round_to_bits(f)) {}  // NOLINT: implicit like a builtin float type
  operator float() const { return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16); }

  static uint16_t round_to_bits(float f) {
    uint32_t u = std::bit_cast<uint32_t>(f);
    if (std::isnan(f)) return static_cast<uint16_t>((u >> 16) | 0x40);  // keep NaN quiet
    uint32_t rounding_bias = 0x7FFF + ((u >> 16) & 1);
    return static_cast<uint16_t>((u + rounding_bias) >> 16);
  }
};

static_assert(sizeof(bf16) == 2);

}  // namespace ponder
