// Errors of file input/output.
#pragma once

#include "tensor/error.h"

namespace ponder::io {

class FormatError : public Error {  // a file that is not what it claims to be
 public:
  using Error::Error;
};

class IoError : public Error {  // the file system refused (missing file, disk full, permissions)
 public:
  using Error::Error;
};

}  // namespace ponder::io
