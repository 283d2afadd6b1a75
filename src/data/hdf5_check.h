// A structural check of a shard's HDF5 bytes, made before libhdf5 parses any of them.
//
// libhdf5 1.10 trusts lengths inside the file: fuzzing found it reading past a heap buffer on an
// attribute name without its NUL and asking for gigabytes for a corrupt object header. ponder
// cannot fix libhdf5, so it reads the metadata libhdf5 will decode itself, with bounded reads,
// and refuses the file unless every length and address in it is consistent.
//
// What is accepted is exactly what ShardWriter writes (libhdf5's latest format): superblock
// version 2 or 3 with 8-byte offsets and lengths and no extension; version 2 object headers
// (checksummed) for the root group and each object it links to, with their continuation chunks;
// compact links and attributes (no dense storage, no shared messages, hard links only);
// integer, float and fixed-length string types; contiguous or compact dataset storage.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>

namespace ponder::data {

// Throws io::FormatError "<path>: <problem>" unless the file has the structure described above.
// Checks structure only: which datasets and attributes a shard holds is Shard's business.
void check_hdf5_structure(const std::filesystem::path& path);

// HDF5's metadata checksum (Bob Jenkins' lookup3 hashlittle, initial value 0).
uint32_t hdf5_checksum(const uint8_t* data, size_t size);

}  // namespace ponder::data
