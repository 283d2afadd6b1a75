#include "io/atomic_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "io/errors.h"

namespace ponder::io {

AtomicFile::AtomicFile(std::filesystem::path path) : path_(std::move(path)) {
  temp_ = path_;
  temp_ += ".tmp." + std::to_string(::getpid());
  file_ = std::fopen(temp_.c_str(), "wb");
  PONDER_CHECK(file_, IoError, path_.string(), ": cannot create (", std::strerror(errno), ")");
}

AtomicFile::~AtomicFile() {
  if (file_) {
    std::fclose(file_);
    std::filesystem::remove(temp_);
  }
}

void AtomicFile::write(const char* data, size_t n) {
  if (n == 0) return;  // empty tensors have no data pointer
  PONDER_CHECK(std::fwrite(data, 1, n, file_) == n, IoError, path_.string(), ": write failed (",
               std::strerror(errno), ")");
}

void AtomicFile::commit() {
  bool ok = std::fflush(file_) == 0 && ::fsync(::fileno(file_)) == 0;
  int err = errno;
  ok = std::fclose(file_) == 0 && ok;
  file_ = nullptr;
  if (!ok) {
    std::filesystem::remove(temp_);
    fail<IoError>(path_.string(), ": could not flush to disk (", std::strerror(err), ")");
  }
  std::error_code ec;
  std::filesystem::rename(temp_, path_, ec);
  if (ec) {
    std::filesystem::remove(temp_);
    fail<IoError>(path_.string(), ": rename failed (", ec.message(), ")");
  }
}

}  // namespace ponder::io
