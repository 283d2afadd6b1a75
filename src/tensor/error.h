// Typed exceptions. Every message names the operation and the offending operands so that one
// line on stderr tells the user what went wrong.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace ponder {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class ShapeError : public Error {  // incompatible or invalid shapes
 public:
  using Error::Error;
};

class DTypeError : public Error {  // unsupported or mismatched dtypes
 public:
  using Error::Error;
};

class DeviceError : public Error {  // mismatched devices, missing CUDA, bad device index
 public:
  using Error::Error;
};

class ValueError : public Error {  // an argument outside its allowed range
 public:
  using Error::Error;
};

class AutogradError : public Error {  // misuse of the tape (second backward, in-place on saved)
 public:
  using Error::Error;
};

class OutOfMemoryError : public Error {
 public:
  using Error::Error;
};

// Builds a message from streamable parts: fail<ShapeError>("matmul: ", a.shape(), " vs ", ...).
template <class E = Error, class... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  throw E(os.str());
}

}  // namespace ponder

// Checks a precondition that depends on user input (never compiled out).
#define PONDER_CHECK(cond, ErrorType, ...)            \
  do {                                                \
    if (!(cond)) ::ponder::fail<ErrorType>(__VA_ARGS__); \
  } while (0)
