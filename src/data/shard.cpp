#include "data/shard.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>

#include "data/hdf5_check.h"
#include "data/hdf5_support.h"
#include "io/errors.h"

namespace ponder::data {
namespace hdf5 {

std::recursive_mutex& lock() {
  static std::recursive_mutex m;
  return m;
}

namespace {
herr_t keep_innermost(unsigned n, const H5E_error2_t* err, void* out) {
  if (n == 0 && err->desc) *static_cast<std::string*>(out) = err->desc;
  return 0;
}
}  // namespace

std::string reason(const H5::Exception& e) {
  std::string innermost;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, keep_innermost, &innermost);
  return innermost.empty() ? e.getDetailMsg() : innermost;
}

}  // namespace hdf5

namespace {

namespace fs = std::filesystem;
using io::FormatError;
using io::IoError;

constexpr const char* kTokens = "tokens";
constexpr const char* kSpanNames[4] = {"inst_start", "inst_len", "resp_start", "resp_len"};

// Bounds that stop a corrupt or hostile header from making the reader allocate absurd buffers.
constexpr uint64_t kMaxElements = uint64_t(1) << 36;
constexpr size_t kMaxTokenizerIdBytes = 4096;
constexpr hsize_t kScanBlock = hsize_t(1) << 20;
constexpr int64_t kMaxVocab = std::numeric_limits<int32_t>::max();

bool is_signed_int(const H5::DataType& t, size_t bytes) {
  return t.getClass() == H5T_INTEGER && t.getSize() == bytes && H5Tget_sign(t.getId()) == H5T_SGN_2;
}

std::string describe(const H5::DataType& t) {
  const std::string bits = std::to_string(8 * t.getSize()) + "-bit ";
  switch (t.getClass()) {
    case H5T_INTEGER:
      return bits + (H5Tget_sign(t.getId()) == H5T_SGN_2 ? "signed" : "unsigned") + " integers";
    case H5T_FLOAT: return bits + "floats";
    case H5T_STRING: return "strings";
    default: return "a non-numeric type";
  }
}

void read_range(const H5::DataSet& ds, hsize_t start, hsize_t count, int32_t* out) {
  if (count == 0) return;
  H5::DataSpace file_space = ds.getSpace();
  file_space.selectHyperslab(H5S_SELECT_SET, &count, &start);
  H5::DataSpace memory_space(1, &count);
  ds.read(out, H5::PredType::NATIVE_INT32, memory_space, file_space);
}

// The validating open of one shard file; every complaint names the file.
class Opener {
 public:
  Opener(const fs::path& path, uint64_t file_bytes) : path_(path), file_bytes_(file_bytes) {}

  template <class... Parts>
  [[noreturn]] void bad(const Parts&... parts) const {
    fail<FormatError>(path_.string(), ": ", parts...);
  }

  int64_t int_attribute(const H5::H5File& file, const char* name) const {
    H5::Attribute a = attribute(file, name);
    H5::DataType type = a.getDataType();
    if (type.getClass() != H5T_INTEGER) bad("attribute \"", name, "\": expected an integer, found ", describe(type));
    int64_t value = 0;
    a.read(H5::PredType::NATIVE_INT64, &value);
    return value;
  }

  std::string string_attribute(const H5::H5File& file, const char* name) const {
    H5::Attribute a = attribute(file, name);
    H5::DataType type = a.getDataType();
    if (type.getClass() != H5T_STRING) bad("attribute \"", name, "\": expected a string, found ", describe(type));
    H5::StrType str = a.getStrType();  // fixed length: check_hdf5_structure refuses variable-length types
    if (str.getSize() > kMaxTokenizerIdBytes)
      bad("attribute \"", name, "\": ", str.getSize(), " bytes is longer than ", kMaxTokenizerIdBytes);
    std::string value;
    a.read(str, value);
    if (const size_t nul = value.find('\0'); nul != std::string::npos) value.resize(nul);  // NUL padding
    if (value.empty() || value.size() > kMaxTokenizerIdBytes)
      bad("attribute \"", name, "\": expected 1 to ", kMaxTokenizerIdBytes, " bytes, found ", value.size());
    return value;
  }

  // Opens `name` as a 1-D dataset of `bytes`-byte signed integers; returns it and its length.
  H5::DataSet open_vector(const H5::H5File& file, const char* name, size_t bytes, hsize_t& length) const {
    if (!file.nameExists(name)) bad("dataset \"", name, "\" is missing");
    if (file.childObjType(name) != H5O_TYPE_DATASET) bad("\"", name, "\" is not a dataset");
    H5::DataSet ds = file.openDataSet(name);
    H5::DataType type = ds.getDataType();
    if (!is_signed_int(type, bytes))
      bad("dataset \"", name, "\": expected ", 8 * bytes, "-bit signed integers, found ", describe(type));
    H5::DataSpace space = ds.getSpace();
    const int dims = space.getSimpleExtentNdims();
    if (space.getSimpleExtentType() != H5S_SIMPLE || dims != 1)
      bad("dataset \"", name, "\": expected 1 dimension, found ", dims);
    space.getSimpleExtentDims(&length);
    check_stored_size(ds, name, length, bytes);
    return ds;
  }

 private:
  H5::Attribute attribute(const H5::H5File& file, const char* name) const {
    if (!file.attrExists(name)) bad("attribute \"", name, "\" is missing");
    H5::Attribute a = file.openAttribute(name);
    const hssize_t points = a.getSpace().getSimpleExtentNpoints();
    if (points != 1) bad("attribute \"", name, "\": expected one value, found ", points);
    return a;
  }

  // The data must lie in the file (check_hdf5_structure admits only uncompressed storage).
  void check_stored_size(const H5::DataSet& ds, const char* name, hsize_t n, size_t bytes) const {
    if (n > kMaxElements) bad("dataset \"", name, "\": ", n, " elements is more than a shard may hold");
    const uint64_t logical = n * bytes;
    if (logical > file_bytes_ || ds.getStorageSize() < logical) {
      bad("dataset \"", name, "\": claims ", n, " elements but the file stores ", ds.getStorageSize(),
          " bytes of it (truncated or partly written)");
    }
  }

  const fs::path& path_;
  uint64_t file_bytes_;
};

// The file system's complaints come first, as IoError: missing, a directory, unreadable.
uint64_t check_readable_file(const fs::path& path) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  PONDER_CHECK(fs::exists(status), IoError, path.string(), ": no such file");
  PONDER_CHECK(fs::is_regular_file(status), IoError, path.string(), ": not a regular file");
  std::ifstream probe(path, std::ios::binary);
  PONDER_CHECK(probe.good(), IoError, path.string(), ": cannot be read (", std::strerror(errno), ")");
  return fs::file_size(path);
}

}  // namespace

// ---- reading ----

struct Shard::Handle {
  H5::H5File file;
  H5::DataSet tokens;
};

Shard::Shard(fs::path path, TokenCheck check) : path_(std::move(path)) {
  const uint64_t file_bytes = check_readable_file(path_);
  const Opener o(path_, file_bytes);
  check_hdf5_structure(path_);  // libhdf5 trusts the lengths in a file: nothing reaches it unchecked
  hdf5::guarded<FormatError>(path_, [&] {
    h5_ = std::make_unique<Handle>();
    h5_->file = H5::H5File(path_.string(), H5F_ACC_RDONLY);
    const H5::H5File& file = h5_->file;

    const int64_t version = o.int_attribute(file, "format_version");
    if (version != kShardFormatVersion)
      o.bad("attribute \"format_version\" is ", version, "; this ponder reads version ", kShardFormatVersion);
    meta_.vocab_size = o.int_attribute(file, "vocab_size");
    if (meta_.vocab_size < 1 || meta_.vocab_size > kMaxVocab)
      o.bad("attribute \"vocab_size\" is ", meta_.vocab_size, "; expected 1 to ", kMaxVocab);
    meta_.tokenizer_id = o.string_attribute(file, "tokenizer_id");

    hsize_t n_tokens = 0;
    h5_->tokens = o.open_vector(file, kTokens, sizeof(int32_t), n_tokens);
    num_tokens_ = static_cast<int64_t>(n_tokens);

    std::vector<int64_t> columns[4];
    hsize_t n_samples = 0;
    for (int c = 0; c < 4; ++c) {
      hsize_t n = 0;
      H5::DataSet ds = o.open_vector(file, kSpanNames[c], sizeof(int64_t), n);
      if (c == 0) n_samples = n;
      if (n != n_samples)
        o.bad("datasets \"", kSpanNames[0], "\" (", n_samples, " samples) and \"", kSpanNames[c], "\" (", n,
              " samples) differ in length");
      columns[c].resize(n);
      if (n > 0) ds.read(columns[c].data(), H5::PredType::NATIVE_INT64);
    }
    spans_.resize(n_samples);
    for (size_t i = 0; i < n_samples; ++i) {
      SampleSpan& s = spans_[i];
      s = {columns[0][i], columns[1][i], columns[2][i], columns[3][i]};
      for (int part = 0; part < 2; ++part) {
        const int64_t start = part ? s.resp_start : s.inst_start, len = part ? s.resp_len : s.inst_len;
        if (start < 0 || len < 0 || start > num_tokens_ - len)
          o.bad("datasets \"", kSpanNames[2 * part], "\"/\"", kSpanNames[2 * part + 1], "\": sample ", i,
                " spans [", start, ", ", start, " + ", len, ") outside \"tokens\" (", num_tokens_, " tokens)");
      }
      if (s.resp_len == 0) o.bad("dataset \"resp_len\": sample ", i, " has an empty response");
      if (s.packed_length() < 1) o.bad("dataset \"resp_len\": sample ", i, " has 1 token; a sample needs at least 2");
    }

    if (check == TokenCheck::scan) {
      std::vector<int32_t> block(std::min<hsize_t>(n_tokens, kScanBlock));
      for (hsize_t at = 0; at < n_tokens; at += block.size()) {
        const hsize_t count = std::min<hsize_t>(block.size(), n_tokens - at);
        read_range(h5_->tokens, at, count, block.data());
        for (hsize_t k = 0; k < count; ++k)
          if (block[k] < 0 || block[k] >= meta_.vocab_size)
            o.bad("dataset \"tokens\": token ", block[k], " at position ", at + k, " is outside [0, vocab_size ",
                  meta_.vocab_size, ")");
      }
    }
  });
}

Shard::~Shard() {
  std::lock_guard hold(hdf5::lock());
  h5_.reset();
}

Shard::Shard(Shard&&) noexcept = default;
Shard& Shard::operator=(Shard&& other) noexcept {
  std::lock_guard hold(hdf5::lock());
  path_ = std::move(other.path_);
  meta_ = std::move(other.meta_);
  num_tokens_ = other.num_tokens_;
  spans_ = std::move(other.spans_);
  h5_ = std::move(other.h5_);
  return *this;
}

const SampleSpan& Shard::span(int64_t i) const {
  PONDER_CHECK(i >= 0 && i < size(), ValueError, path_.string(), ": sample ", i, " is out of range (", size(),
               " samples)");
  return spans_[i];
}

Sample Shard::get(int64_t i) const {
  const SampleSpan& s = span(i);
  Sample out;
  out.instruction.resize(s.inst_len);
  out.response.resize(s.resp_len);
  hdf5::guarded<FormatError>(path_, [&] {
    read_range(h5_->tokens, s.inst_start, s.inst_len, out.instruction.data());
    read_range(h5_->tokens, s.resp_start, s.resp_len, out.response.data());
  });
  for (const auto* part : {&out.instruction, &out.response})
    for (int32_t id : *part)
      PONDER_CHECK(id >= 0 && id < meta_.vocab_size, FormatError, path_.string(), ": dataset \"tokens\": sample ", i,
                   " holds token ", id, ", outside [0, vocab_size ", meta_.vocab_size, ")");
  return out;
}

// ---- writing ----

struct ShardWriter::Handle {
  H5::H5File file;
};

namespace {

// The latest format (superblock 3, checksummed version 2 object headers, compact links and
// attributes) is what check_hdf5_structure accepts.
H5::FileAccPropList latest_format() {
  H5::FileAccPropList fapl;
  fapl.setLibverBounds(H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
  return fapl;
}

// A contiguous dataset holding `values` (no chunk index for a reader to walk).
template <class T>
void write_vector(H5::H5File& file, const char* name, const std::vector<T>& values, const H5::PredType& file_type,
                  const H5::PredType& memory_type) {
  const hsize_t n = values.size();
  H5::DataSet ds = file.createDataSet(name, file_type, H5::DataSpace(1, &n));
  if (n > 0) ds.write(values.data(), memory_type);
}

void write_scalar(H5::H5File& file, const char* name, int64_t value) {
  file.createAttribute(name, H5::PredType::STD_I64LE, H5::DataSpace(H5S_SCALAR))
      .write(H5::PredType::NATIVE_INT64, &value);
}

}  // namespace

ShardWriter::ShardWriter(fs::path path, ShardMeta meta) : path_(std::move(path)), meta_(std::move(meta)) {
  PONDER_CHECK(meta_.vocab_size >= 1 && meta_.vocab_size <= kMaxVocab, ValueError, "ShardWriter: vocab_size ",
               meta_.vocab_size, " is outside [1, ", kMaxVocab, "]");
  PONDER_CHECK(!meta_.tokenizer_id.empty() && meta_.tokenizer_id.size() <= kMaxTokenizerIdBytes, ValueError,
               "ShardWriter: the tokenizer id must have 1 to ", kMaxTokenizerIdBytes, " bytes");
  const fs::path dir = path_.has_parent_path() ? path_.parent_path() : fs::path(".");
  PONDER_CHECK(fs::is_directory(dir), IoError, path_.string(), ": the directory ", dir.string(), " does not exist");
  temp_ = path_;
  temp_ += ".tmp." + std::to_string(::getpid());
  hdf5::guarded<IoError>(temp_, [&] {
    h5_ = std::make_unique<Handle>();
    H5::H5File& file = h5_->file;
    file = H5::H5File(temp_.string(), H5F_ACC_TRUNC, H5::FileCreatPropList::DEFAULT, latest_format());
    write_scalar(file, "format_version", kShardFormatVersion);
    write_scalar(file, "vocab_size", meta_.vocab_size);
    const H5::StrType text(H5::PredType::C_S1, meta_.tokenizer_id.size());  // fixed length: see string_attribute
    file.createAttribute("tokenizer_id", text, H5::DataSpace(H5S_SCALAR)).write(text, meta_.tokenizer_id);
  });
}

ShardWriter::~ShardWriter() {
  if (!h5_) return;
  {
    std::lock_guard hold(hdf5::lock());
    try {
      h5_.reset();
    } catch (...) {  // nothing to report from a destructor; the temporary goes either way
    }
  }
  std::error_code ec;
  fs::remove(temp_, ec);
}

void ShardWriter::add(const Sample& sample) {
  PONDER_CHECK(h5_, ValueError, "ShardWriter: ", path_.string(), " is already closed");
  PONDER_CHECK(!sample.response.empty() && sample.packed_length() >= 1, ValueError, "ShardWriter: sample ", samples_,
               " needs a non-empty response and at least 2 tokens");
  for (const auto* part : {&sample.instruction, &sample.response})
    for (int32_t id : *part)
      PONDER_CHECK(id >= 0 && id < meta_.vocab_size, ValueError, "ShardWriter: sample ", samples_, ": token id ", id,
                   " is outside [0, vocab_size ", meta_.vocab_size, ")");
  const auto inst = static_cast<int64_t>(sample.instruction.size());
  const auto resp = static_cast<int64_t>(sample.response.size());
  const int64_t values[4] = {tokens_, inst, tokens_ + inst, resp};
  for (int c = 0; c < 4; ++c) pending_spans_[c].push_back(values[c]);
  pending_tokens_.insert(pending_tokens_.end(), sample.instruction.begin(), sample.instruction.end());
  pending_tokens_.insert(pending_tokens_.end(), sample.response.begin(), sample.response.end());
  ++samples_;
  tokens_ += inst + resp;
}

void ShardWriter::close() {
  PONDER_CHECK(h5_, ValueError, "ShardWriter: ", path_.string(), " is already closed");
  hdf5::guarded<IoError>(temp_, [&] {
    write_vector(h5_->file, kTokens, pending_tokens_, H5::PredType::STD_I32LE, H5::PredType::NATIVE_INT32);
    for (int c = 0; c < 4; ++c)
      write_vector(h5_->file, kSpanNames[c], pending_spans_[c], H5::PredType::STD_I64LE, H5::PredType::NATIVE_INT64);
    h5_->file.close();
  });
  h5_.reset();
  const int fd = ::open(temp_.c_str(), O_RDONLY);
  const bool synced = fd >= 0 && ::fsync(fd) == 0;
  const int err = errno;
  if (fd >= 0) ::close(fd);
  std::error_code ec;
  if (synced) fs::rename(temp_, path_, ec);
  if (!synced || ec) {
    fs::remove(temp_);
    fail<IoError>(path_.string(), ": could not ", synced ? "rename into place (" + ec.message() + ")"
                                                          : "flush to disk (" + std::string(std::strerror(err)) + ")");
  }
}

ShardSetWriter::ShardSetWriter(fs::path dir, ShardMeta meta, int64_t shard_tokens)
    : dir_(std::move(dir)), meta_(std::move(meta)), shard_tokens_(shard_tokens) {
  PONDER_CHECK(shard_tokens_ > 0, ValueError, "ShardSetWriter: shard_tokens must be positive, got ", shard_tokens_);
}

ShardSetWriter::~ShardSetWriter() {
  if (done_) return;
  open_.reset();  // removes its temporary
  std::error_code ec;
  for (const fs::path& p : closed_) fs::remove(p, ec);
}

void ShardSetWriter::close_open_shard() {
  open_->close();
  closed_.push_back(open_path_);
  open_.reset();
}

void ShardSetWriter::add(const Sample& sample) {
  const auto n = static_cast<int64_t>(sample.instruction.size() + sample.response.size());
  if (open_ && open_->tokens() > 0 && open_->tokens() + n > shard_tokens_) close_open_shard();
  if (!open_) {
    char name[32];
    std::snprintf(name, sizeof name, "shard_%06zu.h5", closed_.size());
    open_path_ = dir_ / name;
    open_ = std::make_unique<ShardWriter>(open_path_, meta_);
  }
  open_->add(sample);
  tokens_ += n;
}

std::vector<fs::path> ShardSetWriter::close() {
  if (open_) close_open_shard();
  done_ = true;
  return closed_;
}

}  // namespace ponder::data
