// A file that appears under its final name only when complete: written to a temporary name in
// the same directory, flushed to disk, then renamed. Destroyed uncommitted, it removes the
// temporary and leaves any previous file untouched.
#pragma once

#include <cstdio>
#include <filesystem>

namespace ponder::io {

class AtomicFile {
 public:
  explicit AtomicFile(std::filesystem::path path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const char* data, size_t n);
  // Flushes, fsyncs and renames into place.
  void commit();

 private:
  std::filesystem::path path_, temp_;
  std::FILE* file_ = nullptr;
};

}  // namespace ponder::io
