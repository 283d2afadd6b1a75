#include "tensor/dtype.h"

#include <string>

namespace ponder {

DType parse_dtype(std::string_view name) {
  if (name == "f32" || name == "float32") return DType::f32;
  if (name == "f64" || name == "float64") return DType::f64;
  if (name == "bf16" || name == "bfloat16") return DType::bf16;
  if (name == "i32" || name == "int32") return DType::i32;
  if (name == "i64" || name == "int64") return DType::i64;
  if (name == "u8" || name == "uint8" || name == "bool") return DType::u8;
  fail<DTypeError>("unknown dtype \"", name, "\" (expected f32, f64, bf16, i32, i64 or u8)");
}

}  // namespace ponder
