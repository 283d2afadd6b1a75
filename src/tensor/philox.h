// Philox 4x32-10 counter-based generator (Salmon et al., "Parallel random numbers: as easy as
// 1, 2, 3", SC'11). A (key, counter) pair maps to four 32-bit words with no hidden state, so
// element i of a random tensor depends only on (seed, offset, i): the same on CPU and GPU, in
// any thread order. Usable from host and device code.
#pragma once

#include <cstdint>

#include "tensor/host_device.h"

namespace ponder::philox {

struct Words {
  uint32_t w[4];
};

PONDER_HOST_DEVICE void mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  uint64_t p = static_cast<uint64_t>(a) * b;
  hi = static_cast<uint32_t>(p >> 32);
  lo = static_cast<uint32_t>(p);
}

// Ten rounds over counter (c0..c3) with key (k0, k1).
PONDER_HOST_DEVICE Words philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3,
                                       uint32_t k0, uint32_t k1) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo(kM0, c0, hi0, lo0);
    mulhilo(kM1, c2, hi1, lo1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
    k0 += kW0;
    k1 += kW1;
  }
  return {{c0, c1, c2, c3}};
}

// The four words of block `block` of the stream keyed by `seed`.
PONDER_HOST_DEVICE Words block_words(uint64_t seed, uint64_t block) {
  return philox4x32_10(static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32), 0u, 0u,
                       static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// Element i of a stream starting at block `offset` uses word i % 4 of block offset + i / 4.
PONDER_HOST_DEVICE uint32_t word(uint64_t seed, uint64_t offset, uint64_t i) {
  return block_words(seed, offset + i / 4).w[i % 4];
}

// Blocks consumed by n elements.
PONDER_HOST_DEVICE uint64_t blocks_for(uint64_t n) { return (n + 3) / 4; }

// 24 random bits -> [0, 1).
PONDER_HOST_DEVICE float to_unit(uint32_t x) { return static_cast<float>(x >> 8) * (1.0f / 16777216.0f); }

}  // namespace ponder::philox
