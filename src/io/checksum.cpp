#include "io/checksum.h"

#include <array>
#include <cstdio>
#include <fstream>
#include <vector>

#include "io/errors.h"

namespace ponder::io {
namespace {

std::array<uint32_t, 256> make_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}

}  // namespace

uint32_t crc32(const void* data, size_t n, uint32_t crc) {
  static const std::array<uint32_t, 256> table = make_table();
  const auto* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

uint32_t file_crc32(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path.string() + ": cannot open for reading");
  std::vector<char> buf(1 << 20);
  uint32_t crc = 0;
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    crc = crc32(buf.data(), static_cast<size_t>(in.gcount()), crc);
  }
  if (in.bad()) throw IoError(path.string() + ": read failed");
  return crc;
}

std::string crc_hex(uint32_t crc) {
  char s[16];
  std::snprintf(s, sizeof s, "0x%08x", crc);
  return s;
}

}  // namespace ponder::io
