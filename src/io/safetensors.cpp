#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "io/atomic_file.h"
#include "ops/view.h"

namespace ponder::io {
namespace {

using json = nlohmann::json;

constexpr uint64_t kMaxHeaderBytes = 100 << 20;  // the reference implementation's limit

const char* dtype_code(DType t) {
  switch (t) {
    case DType::f32: return "F32";
    case DType::f64: return "F64";
    case DType::bf16: return "BF16";
    case DType::i32: return "I32";
    case DType::i64: return "I64";
    case DType::u8: return "U8";
  }
  return "?";
}

bool parse_dtype_code(const std::string& code, DType& out) {
  static const std::pair<const char*, DType> codes[] = {
      {"F32", DType::f32}, {"F64", DType::f64}, {"BF16", DType::bf16},
      {"I32", DType::i32}, {"I64", DType::i64}, {"U8", DType::u8}, {"BOOL", DType::u8}};
  for (const auto& [name, dtype] : codes) {
    if (code == name) {
      out = dtype;
      return true;
    }
  }
  return false;
}

void write_u64_le(std::string& s, uint64_t v) {
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

uint64_t read_u64_le(const std::string& s) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[i]);
  return v;
}

struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};

// Validates one header entry; `where` prefixes every message.
Entry parse_entry(const std::string& name, const json& v, uint64_t data_bytes, const std::string& where) {
  auto bad = [&](const std::string& why) -> Entry {
    fail<FormatError>(where, ": tensor \"", name, "\": ", why);
  };
  if (!v.is_object()) return bad("entry is not an object");
  if (!v.contains("dtype") || !v["dtype"].is_string()) return bad("missing dtype");
  if (!v.contains("shape") || !v["shape"].is_array()) return bad("missing shape");
  if (!v.contains("data_offsets") || !v["data_offsets"].is_array() || v["data_offsets"].size() != 2)
    return bad("data_offsets must be [begin, end]");
  Entry e{name, DType::f32, {}, 0, 0};
  if (!parse_dtype_code(v["dtype"].get<std::string>(), e.dtype))
    return bad("unsupported dtype " + v["dtype"].get<std::string>());
  if (v["shape"].size() > static_cast<size_t>(IntVec::kMaxDims)) return bad("too many dimensions");
  uint64_t numel = 1;
  for (const json& d : v["shape"]) {
    if (!d.is_number_unsigned()) return bad("shape entries must be non-negative integers");
    uint64_t n = d.get<uint64_t>();
    if (n > (uint64_t(1) << 40) || (n && numel > (uint64_t(1) << 62) / n)) return bad("shape is too large");
    numel *= n;
    e.shape.push_back(static_cast<int64_t>(n));
  }
  for (const json& o : v["data_offsets"])
    if (!o.is_number_unsigned()) return bad("data_offsets must be non-negative integers");
  e.begin = v["data_offsets"][0].get<uint64_t>();
  e.end = v["data_offsets"][1].get<uint64_t>();
  if (e.begin > e.end || e.end > data_bytes) return bad("data_offsets lie outside the data section");
  // numel may reach 2^62: its byte count could wrap around 2^64 and match a tiny span.
  const uint64_t size = element_size(e.dtype), span = e.end - e.begin;
  const bool fits = numel <= std::numeric_limits<uint64_t>::max() / size;
  if (!fits || numel * size != span)
    return bad("data_offsets span " + std::to_string(span) + " bytes but the shape needs " +
               (fits ? std::to_string(numel * size) : std::to_string(numel) + " elements"));
  return e;
}

}  // namespace

void save_safetensors(const std::filesystem::path& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<Tensor> host;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    PONDER_CHECK(!header.contains(name) && name != "__metadata__", ValueError,
                 "save_safetensors: duplicate or reserved tensor name \"", name, "\"");
    PONDER_CHECK(t.defined(), ValueError, "save_safetensors: tensor \"", name, "\" is undefined");
    Tensor c = contiguous(t.detach().to(Device::cpu()));
    uint64_t bytes = static_cast<uint64_t>(c.numel()) * element_size(c.dtype());
    header[name] = {{"dtype", dtype_code(c.dtype())}, {"shape", c.shape().vec()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    host.push_back(c);
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data section 8-byte aligned
  std::string prefix;
  write_u64_le(prefix, text.size());
  AtomicFile out(path);
  out.write(prefix.data(), prefix.size());
  out.write(text.data(), text.size());
  for (const Tensor& c : host)
    out.write(static_cast<const char*>(c.data_ptr()), static_cast<size_t>(c.numel()) * element_size(c.dtype()));
  out.commit();
}

SafetensorsContents parse_safetensors(const std::string& bytes, const std::string& origin) {
  PONDER_CHECK(bytes.size() >= 8, FormatError, origin, ": too short to be a safetensors file (",
               bytes.size(), " bytes)");
  uint64_t header_len = read_u64_le(bytes);
  PONDER_CHECK(header_len <= kMaxHeaderBytes && header_len <= bytes.size() - 8, FormatError, origin,
               ": header length ", header_len, " exceeds the file (", bytes.size(), " bytes)");
  json header = json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(header_len),
                            nullptr, /*allow_exceptions=*/false);
  PONDER_CHECK(header.is_object(), FormatError, origin, ": header is not a JSON object");
  const uint64_t data_bytes = bytes.size() - 8 - header_len;
  const char* data = bytes.data() + 8 + header_len;

  SafetensorsContents out;
  std::vector<Entry> entries;
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      PONDER_CHECK(value.is_object(), FormatError, origin, ": __metadata__ is not an object");
      for (const auto& [k, v] : value.items()) {
        PONDER_CHECK(v.is_string(), FormatError, origin, ": __metadata__ value of \"", k, "\" is not a string");
        out.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(name, value, data_bytes, origin));
  }
  // The data section must be covered exactly once, without holes or overlaps.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
  uint64_t expected = 0;
  for (const Entry& e : entries) {
    PONDER_CHECK(e.begin == expected, FormatError, origin, ": tensor \"", e.name,
                 "\" starts at byte ", e.begin, " but the previous tensor ends at ", expected);
    expected = e.end;
  }
  PONDER_CHECK(expected == data_bytes, FormatError, origin, ": data section has ", data_bytes,
               " bytes but the tensors cover ", expected);
  for (const Entry& e : entries) {
    Tensor t = Tensor::empty(e.shape, {e.dtype, Device::cpu()});
    if (e.end > e.begin) std::memcpy(t.data_ptr(), data + e.begin, e.end - e.begin);
    out.tensors[e.name] = t;
  }
  return out;
}

SafetensorsContents load_safetensors(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  PONDER_CHECK(in.good(), IoError, path.string(), ": cannot open for reading");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  PONDER_CHECK(!in.bad(), IoError, path.string(), ": read failed");
  return parse_safetensors(bytes, path.string());
}

}  // namespace ponder::io
