#include "data/hdf5_check.h"

#include <H5Cpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <string_view>

#include "data/data_test_util.h"
#include "data/shard.h"
#include "fuzz/entries.h"
#include "io/errors.h"
#include "support/test_util.h"

namespace ponder::data {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;
using ponder::testing::error_message;
using testing::has_substr;
using testing::TempDir;

Bytes read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const fs::path& path, const Bytes& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

uint64_t get(const Bytes& b, size_t at, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= uint64_t(b.at(at + i)) << (8 * i);
  return v;
}

void put(Bytes& b, size_t at, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) b.at(at + i) = uint8_t(v >> (8 * i));
}

void reseal(Bytes& b) {
  std::string text(b.begin(), b.end());
  fuzz::reseal_hdf5_checksums(text);
  b.assign(text.begin(), text.end());
}

// Every offset at which `needle` occurs.
std::vector<size_t> find_all(const Bytes& b, std::string_view needle) {
  std::vector<size_t> at;
  for (auto it = b.begin(); (it = std::search(it, b.end(), needle.begin(), needle.end())) != b.end(); ++it)
    at.push_back(size_t(it - b.begin()));
  return at;
}

size_t find_once(const Bytes& b, std::string_view needle) {
  const std::vector<size_t> at = find_all(b, needle);
  EXPECT_EQ(at.size(), 1u) << needle;
  return at.empty() ? 0 : at[0];
}

// The FormatError line for `path`, which must name the file.
std::string refusal(const fs::path& path) {
  std::string msg = error_message<io::FormatError>([&] { check_hdf5_structure(path); });
  EXPECT_TRUE(has_substr(msg, path.string() + ": ")) << msg;
  return msg;
}

class Hdf5Check : public ::testing::Test {
 protected:
  void SetUp() override {
    ShardWriter w(path_, {50, "test-tokenizer"});
    w.add({{1, 2, 3}, {4, 5}});
    w.add({{}, {6, 7, 8}});
    w.close();
    ShardWriter empty(dir_ / "empty.h5", {50, "t"});
    empty.close();
    bytes_ = read_bytes(path_);
  }
  // Writes the edited bytes back and returns the refusal.
  std::string refusal_after_edit(bool reseal_checksums = true) {
    if (reseal_checksums) reseal(bytes_);  // so the edit reaches the check a test aims at
    write_bytes(path_, bytes_);
    return refusal(path_);
  }
  TempDir dir_;
  fs::path path_ = dir_ / "shard.h5";
  Bytes bytes_;
};

TEST_F(Hdf5Check, AcceptsShardsTheWriterWrites) {
  EXPECT_NO_THROW(check_hdf5_structure(path_));
  EXPECT_NO_THROW(check_hdf5_structure(dir_ / "empty.h5"));
  reseal(bytes_);  // the fuzz target's resealing reproduces the writer's checksums
  EXPECT_EQ(bytes_, read_bytes(path_));
}

TEST_F(Hdf5Check, TruncatedFile) {
  bytes_.pop_back();
  EXPECT_TRUE(has_substr(refusal_after_edit(false), "truncated: the superblock says"));
  bytes_.resize(20);
  EXPECT_TRUE(has_substr(refusal_after_edit(false), "truncated: 20 bytes hold no superblock"));
  bytes_.resize(5);
  EXPECT_TRUE(has_substr(refusal_after_edit(false), "not an HDF5 file"));
}

TEST_F(Hdf5Check, OlderFormatsAreNotAShard) {
  H5::Exception::dontPrint();
  H5::H5File(path_.string(), H5F_ACC_TRUNC).close();  // libhdf5's default: superblock version 0
  EXPECT_TRUE(has_substr(refusal(path_),
                         "not a shard written by `ponder data prepare` (superblock version 0; ponder writes version 3)"));
}

TEST_F(Hdf5Check, ChunkedDatasetsAreNotAShard) {
  H5::Exception::dontPrint();
  {
    H5::FileAccPropList latest;
    latest.setLibverBounds(H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
    H5::H5File f(path_.string(), H5F_ACC_RDWR, H5::FileCreatPropList::DEFAULT, latest);
    const hsize_t n = 8, chunk = 4;
    H5::DSetCreatPropList plist;
    plist.setChunk(1, &chunk);
    f.createDataSet("chunked", H5::PredType::STD_I32LE, H5::DataSpace(1, &n), plist);
  }
  EXPECT_TRUE(has_substr(refusal(path_), "chunked storage; ponder writes contiguous datasets"));
}

TEST_F(Hdf5Check, ChecksumMismatch) {
  bytes_[find_once(bytes_, "test-tokenizer")] ^= 0x20;  // inside the root group's header
  EXPECT_TRUE(has_substr(refusal_after_edit(false), "the root group's object header: checksum mismatch"));
}

TEST_F(Hdf5Check, SuperblockChecksumMismatch) {
  bytes_[40] ^= 1;  // the root group's address
  EXPECT_TRUE(has_substr(refusal_after_edit(false), "superblock: checksum mismatch"));
}

// The input fuzzing found libhdf5 reading past its buffer on: an attribute name without its NUL.
TEST_F(Hdf5Check, AttributeNameNotTerminated) {
  bytes_[find_once(bytes_, std::string_view("tokenizer_id\0", 13)) + 12] = 'X';
  EXPECT_TRUE(has_substr(refusal_after_edit(), "an attribute name that is not NUL-terminated"));
}

// Version 3 attribute message: header (type, size, flags) then version, flags, three sizes and
// the name's character set before the name.
TEST_F(Hdf5Check, MessageSizePastItsChunk) {
  const size_t name = find_once(bytes_, std::string_view("tokenizer_id\0", 13));
  ASSERT_EQ(bytes_[name - 13], 0x0c);  // an attribute message
  put(bytes_, name - 12, 0xffff, 2);
  EXPECT_TRUE(has_substr(refusal_after_edit(), "attribute message of 65535 bytes runs past the end of its chunk"));
}

TEST_F(Hdf5Check, AttributeDataPastItsMessage) {
  const size_t name = find_once(bytes_, std::string_view("tokenizer_id\0", 13));
  const size_t type = name + 13;  // the datatype follows the name: class and version, 3 bytes of bits, size
  ASSERT_EQ(bytes_[type] & 0x0f, 3);     // a string
  ASSERT_EQ(get(bytes_, type + 4, 4), 14u);  // "test-tokenizer"
  put(bytes_, type + 4, 1000, 4);
  EXPECT_TRUE(has_substr(refusal_after_edit(),
                         "attribute \"tokenizer_id\": 1 elements of 1000 bytes do not fit the 14 bytes left in its message"));
}

TEST_F(Hdf5Check, AddressesPastTheEndOfTheFile) {
  const size_t tokens_link = find_once(bytes_, "tokens");
  put(bytes_, tokens_link + 6, bytes_.size() + 100, 8);
  EXPECT_TRUE(has_substr(refusal_after_edit(), "link \"tokens\" points past the end of the file"));

  bytes_ = read_bytes(dir_ / "empty.h5");
  put(bytes_, 36, bytes_.size() - 4, 8);  // the superblock's root group address, 6 bytes short of a header prefix
  EXPECT_TRUE(has_substr(refusal_after_edit(), "the root group's object header at byte"));
}

// The root group's first continuation message: header (type 0x10, 16 bytes, flags), then the
// chunk's address and length.
TEST_F(Hdf5Check, AbsurdChunkSize) {
  const size_t root = get(bytes_, 36, 8);  // the superblock's root group address
  const std::vector<size_t> continuations = find_all(bytes_, std::string_view("\x10\x10\x00", 3));
  const auto first = std::find_if(continuations.begin(), continuations.end(), [&](size_t p) { return p > root; });
  ASSERT_NE(first, continuations.end());
  put(bytes_, *first + 12, uint64_t(1) << 32, 8);
  EXPECT_TRUE(has_substr(refusal_after_edit(), "the root group's continuation chunk: a chunk of 4294967296 bytes"));
}

// Data layout message, version 4, contiguous: header (type 8, 18 bytes, flags), then version,
// class, the data's address and its size.
TEST_F(Hdf5Check, DataPastTheEndOfTheFile) {
  int layouts = 0;
  for (size_t p = 0; p + 22 <= bytes_.size(); ++p)
    if (bytes_[p] == 0x08 && get(bytes_, p + 1, 2) == 18 && bytes_[p + 4] == 4 && bytes_[p + 5] == 1)
      put(bytes_, p + 14, uint64_t(1) << 40, 8), ++layouts;
  ASSERT_EQ(layouts, 5);  // one for each dataset
  EXPECT_TRUE(has_substr(refusal_after_edit(), "(1099511627776 bytes) lies past the end of the file"));
}

}  // namespace
}  // namespace ponder::data
