// safetensors files: an 8-byte little-endian header length, a JSON header mapping names to
// {dtype, shape, data_offsets}, then the raw little-endian tensor bytes. The reader validates
// every field and bound before touching data, because these files come from elsewhere.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "io/errors.h"
#include "tensor/tensor.h"

namespace ponder::io {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

struct SafetensorsContents {
  std::map<std::string, Tensor> tensors;  // CPU tensors
  std::map<std::string, std::string> metadata;
};

// Writes tensors (copied to the CPU, made contiguous) in the given order. The file is written to
// a temporary name, flushed and renamed, so a reader never sees a partial file.
void save_safetensors(const std::filesystem::path& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

SafetensorsContents load_safetensors(const std::filesystem::path& path);

// Parses a file image already in memory (the fuzzing entry point); `origin` names it in errors.
SafetensorsContents parse_safetensors(const std::string& bytes, const std::string& origin);

}  // namespace ponder::io
