// Internal to src/data: FNV-1a, a stable 64-bit fingerprint (not cryptographic) for tokenizer
// identities and dataset layouts.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace ponder::data {

class Fnv1a {
 public:
  Fnv1a& add(std::string_view bytes) {
    for (unsigned char c : bytes) hash_ = (hash_ ^ c) * 0x100000001b3ull;
    return *this;
  }
  Fnv1a& add(uint64_t value) {  // little-endian bytes, the same on every platform
    for (int i = 0; i < 8; ++i) hash_ = (hash_ ^ ((value >> (8 * i)) & 0xFF)) * 0x100000001b3ull;
    return *this;
  }
  uint64_t value() const { return hash_; }
  std::string hex() const {
    char out[17];
    std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(hash_));
    return out;
  }

 private:
  uint64_t hash_ = 0xcbf29ce484222325ull;
};

}  // namespace ponder::data
