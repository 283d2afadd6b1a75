// CRC-32 (IEEE 802.3 polynomial) of files, for the checksums a checkpoint's COMPLETE marker lists.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace ponder::io {

uint32_t crc32(const void* data, size_t n, uint32_t crc = 0);
// CRC-32 of a whole file, read in chunks; IoError if it cannot be read.
uint32_t file_crc32(const std::filesystem::path& path);
// "0x1a2b3c4d"
std::string crc_hex(uint32_t crc);

}  // namespace ponder::io
