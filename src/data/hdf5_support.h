// Internal to src/data: the process-wide HDF5 lock and the translation of HDF5 exceptions into
// ponder error lines. Include only from .cpp files (it pulls in H5Cpp.h).
#pragma once

#include <H5Cpp.h>

#include <filesystem>
#include <mutex>
#include <string>

#include "tensor/error.h"

namespace ponder::data::hdf5 {

// HDF5's serial build is not thread-safe; every HDF5 call in ponder holds this lock.
std::recursive_mutex& lock();

// The most specific message on HDF5's error stack (e.g. "truncated file: eof = ..."), else the
// exception's own.
std::string reason(const H5::Exception& e);

// Runs f under the lock with HDF5's own error printing off, turning an HDF5 exception into one
// E line "<path>: HDF5: <reason>".
template <class E, class F>
auto guarded(const std::filesystem::path& path, F&& f) {
  std::lock_guard hold(lock());
  H5::Exception::dontPrint();
  try {
    return f();
  } catch (const H5::Exception& e) {
    fail<E>(path.string(), ": HDF5: ", reason(e));
  }
}

}  // namespace ponder::data::hdf5
