// bfloat16 storage type for host and device code: 1 sign, 8 exponent, 7 mantissa bits (the top
// half of an IEEE float). Arithmetic happens in float; conversion rounds to nearest even, on the
// host in software and on the device with the hardware conversion (one instruction instead of
// about seven, which bf16 kernels with several operations per element are bound by), so CPU and
// GPU produce the same bits for every number (NaN payloads may differ).
#pragma once

#include <bit>
#include <cstdint>

#if defined(__CUDACC__)
#include <cuda_bf16.h>
#endif

#include "tensor/host_device.h"

namespace ponder {

struct bf16 {
  uint16_t bits = 0;

  bf16() = default;
  PONDER_HOST_DEVICE bf16(float f)  // NOLINT: implicit like a builtin float
#if defined(__CUDA_ARCH__)
      : bits(__bfloat16_as_ushort(__float2bfloat16_rn(f))) {
  }
#else
      : bits(round_to_bits(f)) {
  }
#endif
  PONDER_HOST_DEVICE operator float() const { return from_bits(static_cast<uint32_t>(bits) << 16); }

  PONDER_HOST_DEVICE static uint16_t round_to_bits(float f) {
    uint32_t u = to_bits(f);
    if (f != f) return static_cast<uint16_t>((u >> 16) | 0x40);  // keep NaN quiet
    uint32_t rounding_bias = 0x7FFF + ((u >> 16) & 1);
    return static_cast<uint16_t>((u + rounding_bias) >> 16);
  }

 private:
  PONDER_HOST_DEVICE static uint32_t to_bits(float f) {
#if defined(__CUDA_ARCH__)
    return __float_as_uint(f);
#else
    return std::bit_cast<uint32_t>(f);
#endif
  }
  PONDER_HOST_DEVICE static float from_bits(uint32_t u) {
#if defined(__CUDA_ARCH__)
    return __uint_as_float(u);
#else
    return std::bit_cast<float>(u);
#endif
  }
};

static_assert(sizeof(bf16) == 2);

}  // namespace ponder
