#include "data/shard.h"

#include <H5Cpp.h>
#include <gtest/gtest.h>

#include <fstream>
#include <functional>

#include "data/dataset.h"
#include "data/data_test_util.h"
#include "io/errors.h"
#include "support/test_util.h"

namespace ponder::data {
namespace {

namespace fs = std::filesystem;
using ponder::testing::error_message;
using testing::has_substr;
using testing::TempDir;

const std::vector<Sample> kSamples = {
    {{1, 2, 3}, {4, 5}},
    {{}, {6, 7, 8, 9}},      // plain text
    {{10, 11}, {12}},
};

void write_shard(const fs::path& path, const std::vector<Sample>& samples, ShardMeta meta = {50, "test-tokenizer"}) {
  ShardWriter w(path, meta);
  for (const Sample& s : samples) w.add(s);
  w.close();
}

// Rewrites parts of a valid shard with the HDF5 API, to make the malformed files a reader must refuse.
// The latest format, as the writer's: the reader accepts only that (hdf5_check.h).
void mutate(const fs::path& path, const std::function<void(H5::H5File&)>& change) {
  H5::Exception::dontPrint();
  H5::FileAccPropList latest;
  latest.setLibverBounds(H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
  H5::H5File file(path.string(), H5F_ACC_RDWR, H5::FileCreatPropList::DEFAULT, latest);
  change(file);
}

template <class T>
void replace_dataset(H5::H5File& f, const char* name, const std::vector<T>& values, const H5::PredType& file_type,
                     const H5::PredType& memory_type) {
  if (f.nameExists(name)) f.unlink(name);
  const hsize_t n = values.size();
  H5::DataSet ds = f.createDataSet(name, file_type, H5::DataSpace(1, &n));
  if (n > 0) ds.write(values.data(), memory_type);
}

void replace_int_attribute(H5::H5File& f, const char* name, int64_t value) {
  f.removeAttr(name);
  f.createAttribute(name, H5::PredType::STD_I64LE, H5::DataSpace(H5S_SCALAR)).write(H5::PredType::NATIVE_INT64, &value);
}

// The FormatError message of opening `path`, which must name the file.
std::string open_error(const fs::path& path, TokenCheck check = TokenCheck::scan) {
  std::string msg = error_message<io::FormatError>([&] { Shard s(path, check); });
  EXPECT_TRUE(has_substr(msg, path.string() + ": "));
  return msg;
}

class MalformedShard : public ::testing::Test {
 protected:
  void SetUp() override { write_shard(path_, kSamples); }
  TempDir dir_;
  fs::path path_ = dir_ / "shard.h5";
};

TEST(Shard, WriteReadRoundTrip) {
  TempDir dir;
  write_shard(dir / "a.h5", kSamples);
  Shard shard(dir / "a.h5");
  EXPECT_EQ(shard.meta().vocab_size, 50);
  EXPECT_EQ(shard.meta().tokenizer_id, "test-tokenizer");
  ASSERT_EQ(shard.size(), 3);
  EXPECT_EQ(shard.num_tokens(), 12);
  for (int64_t i = 0; i < shard.size(); ++i) {
    EXPECT_EQ(shard.get(i).instruction, kSamples[i].instruction) << i;
    EXPECT_EQ(shard.get(i).response, kSamples[i].response) << i;
    EXPECT_EQ(shard.span(i).packed_length(), kSamples[i].packed_length()) << i;
  }
  // Instruction and response are stored back to back, sample after sample.
  EXPECT_EQ(shard.span(2).inst_start, 9);
  EXPECT_EQ(shard.span(2).resp_start, 11);
  EXPECT_THROW(shard.get(3), ValueError);
}

TEST(Shard, WriterCommitsOnlyOnClose) {
  TempDir dir;
  const fs::path path = dir / "b.h5";
  {
    ShardWriter w(path, {50, "t"});
    for (const Sample& s : kSamples) w.add(s);
    EXPECT_FALSE(fs::exists(path));
    w.close();
    EXPECT_THROW(w.add(kSamples[0]), ValueError);
  }
  Shard shard(path);
  ASSERT_EQ(shard.size(), 3);
  EXPECT_EQ(shard.get(1).response, kSamples[1].response);
  EXPECT_EQ(shard.get(2).instruction, kSamples[2].instruction);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

TEST(Shard, AbandonedWriterLeavesNothingAndKeepsTheOldFile) {
  TempDir dir;
  const fs::path path = dir / "c.h5";
  write_shard(path, {kSamples[0]});
  {
    ShardWriter w(path, {50, "t"});
    w.add(kSamples[1]);
  }
  EXPECT_EQ(Shard(path).size(), 1);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

TEST(Shard, WriterRejectsBadSamplesAndMeta) {
  TempDir dir;
  ShardWriter w(dir / "d.h5", {10, "t"});
  EXPECT_TRUE(has_substr(error_message<ValueError>([&] { w.add({{1}, {10}}); }), "token id 10 is outside [0, vocab_size 10)"));
  EXPECT_THROW(w.add({{1}, {-1}}), ValueError);
  EXPECT_THROW(w.add({{1, 2}, {}}), ValueError);
  EXPECT_THROW(w.add({{}, {1}}), ValueError);  // one token predicts nothing
  EXPECT_THROW(ShardWriter(dir / "e.h5", {0, "t"}), ValueError);
  EXPECT_THROW(ShardWriter(dir / "e.h5", {10, ""}), ValueError);
  EXPECT_THROW(ShardWriter(dir / "missing" / "e.h5", {10, "t"}), io::IoError);
}

TEST(Shard, EmptyShardIsValid) {
  TempDir dir;
  write_shard(dir / "empty.h5", {});
  Shard shard(dir / "empty.h5");
  EXPECT_EQ(shard.size(), 0);
  EXPECT_EQ(shard.num_tokens(), 0);
}

TEST_F(MalformedShard, MissingDatasets) {
  for (const char* name : {"tokens", "inst_start", "inst_len", "resp_start", "resp_len"}) {
    write_shard(path_, kSamples);
    mutate(path_, [&](H5::H5File& f) { f.unlink(name); });
    EXPECT_TRUE(has_substr(open_error(path_), std::string("dataset \"") + name + "\" is missing"));
  }
}

TEST_F(MalformedShard, WrongDtypes) {
  mutate(path_, [](H5::H5File& f) {
    replace_dataset<float>(f, "tokens", std::vector<float>(12, 1.0f), H5::PredType::IEEE_F32LE, H5::PredType::NATIVE_FLOAT);
  });
  EXPECT_TRUE(has_substr(open_error(path_), "dataset \"tokens\": expected 32-bit signed integers, found 32-bit floats"));

  write_shard(path_, kSamples);
  mutate(path_, [](H5::H5File& f) {
    replace_dataset<int32_t>(f, "inst_len", {3, 0, 2}, H5::PredType::STD_I32LE, H5::PredType::NATIVE_INT32);
  });
  EXPECT_TRUE(has_substr(open_error(path_), "dataset \"inst_len\": expected 64-bit signed integers, found 32-bit signed integers"));

  write_shard(path_, kSamples);
  mutate(path_, [](H5::H5File& f) {
    replace_dataset<uint64_t>(f, "resp_start", {3, 5, 11}, H5::PredType::STD_U64LE, H5::PredType::NATIVE_UINT64);
  });
  EXPECT_TRUE(has_substr(open_error(path_), "found 64-bit unsigned integers"));
}

TEST_F(MalformedShard, WrongRankAndObjectKind) {
  mutate(path_, [](H5::H5File& f) {
    f.unlink("tokens");
    const hsize_t dims[2] = {3, 4};
    std::vector<int32_t> values(12, 1);
    f.createDataSet("tokens", H5::PredType::STD_I32LE, H5::DataSpace(2, dims)).write(values.data(), H5::PredType::NATIVE_INT32);
  });
  EXPECT_TRUE(has_substr(open_error(path_), "dataset \"tokens\": expected 1 dimension, found 2"));

  write_shard(path_, kSamples);
  mutate(path_, [](H5::H5File& f) {
    f.unlink("inst_start");
    f.createGroup("inst_start");
  });
  EXPECT_TRUE(has_substr(open_error(path_), "\"inst_start\" is not a dataset"));
}

TEST_F(MalformedShard, MismatchedLengths) {
  mutate(path_, [](H5::H5File& f) {
    replace_dataset<int64_t>(f, "resp_start", {3, 5}, H5::PredType::STD_I64LE, H5::PredType::NATIVE_INT64);
  });
  EXPECT_TRUE(has_substr(open_error(path_),
                         "datasets \"inst_start\" (3 samples) and \"resp_start\" (2 samples) differ in length"));
}

TEST_F(MalformedShard, SpansOutsideTokens) {
  mutate(path_, [](H5::H5File& f) {
    replace_dataset<int64_t>(f, "resp_start", {3, 5, 12}, H5::PredType::STD_I64LE, H5::PredType::NATIVE_INT64);
  });
  EXPECT_TRUE(has_substr(open_error(path_), "\"resp_start\"/\"resp_len\": sample 2 spans [12, 12 + 1) outside \"tokens\" (12 tokens)"));

  write_shard(path_, kSamples);
  mutate(path_, [](H5::H5File& f) {
    replace_dataset<int64_t>(f, "inst_start", {-1, 5, 9}, H5::PredType::STD_I64LE, H5::PredType::NATIVE_INT64);
  });
  EXPECT_TRUE(has_substr(open_error(path_), "\"inst_start\"/\"inst_len\": sample 0 spans [-1, -1 + 3)"));

  write_shard(path_, kSamples);  // a length so large that start + len would overflow
  mutate(path_, [](H5::H5File& f) {
    replace_dataset<int64_t>(f, "inst_len", {3, 0, INT64_MAX}, H5::PredType::STD_I64LE, H5::PredType::NATIVE_INT64);
  });
  EXPECT_TRUE(has_substr(open_error(path_), "sample 2 spans"));
}

TEST_F(MalformedShard, EmptyResponses) {
  mutate(path_, [](H5::H5File& f) {
    replace_dataset<int64_t>(f, "resp_len", {2, 0, 1}, H5::PredType::STD_I64LE, H5::PredType::NATIVE_INT64);
  });
  EXPECT_TRUE(has_substr(open_error(path_), "dataset \"resp_len\": sample 1 has an empty response"));
}

TEST_F(MalformedShard, TokenIdsAtOrAboveVocab) {
  mutate(path_, [](H5::H5File& f) {
    std::vector<int32_t> tokens = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 50, 12};
    replace_dataset<int32_t>(f, "tokens", tokens, H5::PredType::STD_I32LE, H5::PredType::NATIVE_INT32);
  });
  EXPECT_TRUE(has_substr(open_error(path_), "dataset \"tokens\": token 50 at position 10 is outside [0, vocab_size 50)"));
  // Without the scan, the bad id is found when its sample is read; other samples stay readable.
  Shard lazy(path_, TokenCheck::on_read);
  EXPECT_EQ(lazy.get(0).response, kSamples[0].response);
  EXPECT_TRUE(has_substr(error_message<io::FormatError>([&] { lazy.get(2); }),
                         "dataset \"tokens\": sample 2 holds token 50, outside [0, vocab_size 50)"));
}

TEST_F(MalformedShard, AttributeProblems) {
  mutate(path_, [](H5::H5File& f) { replace_int_attribute(f, "format_version", 2); });
  EXPECT_TRUE(has_substr(open_error(path_), "attribute \"format_version\" is 2; this ponder reads version 1"));

  write_shard(path_, kSamples);
  mutate(path_, [](H5::H5File& f) { f.removeAttr("vocab_size"); });
  EXPECT_TRUE(has_substr(open_error(path_), "attribute \"vocab_size\" is missing"));

  write_shard(path_, kSamples);
  mutate(path_, [](H5::H5File& f) { replace_int_attribute(f, "vocab_size", 0); });
  EXPECT_TRUE(has_substr(open_error(path_), "attribute \"vocab_size\" is 0"));

  write_shard(path_, kSamples);
  mutate(path_, [](H5::H5File& f) { replace_int_attribute(f, "tokenizer_id", 7); });
  EXPECT_TRUE(has_substr(open_error(path_), "attribute \"tokenizer_id\": expected a string, found 64-bit signed integers"));

  // libhdf5 can crash on a corrupt variable-length string, so those are refused before it opens the file.
  write_shard(path_, kSamples);
  mutate(path_, [](H5::H5File& f) {
    f.removeAttr("tokenizer_id");
    const H5::StrType text(H5::PredType::C_S1, H5T_VARIABLE);
    f.createAttribute("tokenizer_id", text, H5::DataSpace(H5S_SCALAR)).write(text, std::string("tok"));
  });
  EXPECT_TRUE(has_substr(open_error(path_), "attribute \"tokenizer_id\": a variable-length type"));

  write_shard(path_, kSamples);  // fixed length with NUL padding, as other writers may leave it
  mutate(path_, [](H5::H5File& f) {
    f.removeAttr("tokenizer_id");
    const H5::StrType text(H5::PredType::C_S1, 16);
    f.createAttribute("tokenizer_id", text, H5::DataSpace(H5S_SCALAR)).write(text, std::string("padded\0\0\0\0\0\0\0\0\0\0", 16));
  });
  EXPECT_EQ(Shard(path_).meta().tokenizer_id, "padded");

  write_shard(path_, kSamples);
  mutate(path_, [](H5::H5File& f) {
    f.removeAttr("format_version");
    const double v = 1.0;
    f.createAttribute("format_version", H5::PredType::IEEE_F64LE, H5::DataSpace(H5S_SCALAR)).write(H5::PredType::NATIVE_DOUBLE, &v);
  });
  EXPECT_TRUE(has_substr(open_error(path_), "attribute \"format_version\": expected an integer, found 64-bit floats"));
}

TEST_F(MalformedShard, SizesTheFileCannotHoldAreRefusedBeforeReading) {
  // A dataset whose extent claims a billion tokens that were never written (no storage allocated).
  mutate(path_, [](H5::H5File& f) {
    f.unlink("tokens");
    const hsize_t n = hsize_t(1) << 30;
    f.createDataSet("tokens", H5::PredType::STD_I32LE, H5::DataSpace(1, &n));
  });
  EXPECT_TRUE(has_substr(open_error(path_), "dataset \"tokens\": claims 1073741824 elements but the file stores"));

  write_shard(path_, kSamples);
  mutate(path_, [](H5::H5File& f) {
    f.unlink("inst_len");
    const hsize_t n = hsize_t(1) << 40;
    f.createDataSet("inst_len", H5::PredType::STD_I64LE, H5::DataSpace(1, &n));
  });
  EXPECT_TRUE(has_substr(open_error(path_), "dataset \"inst_len\": 1099511627776 elements is more than a shard may hold"));
}

TEST_F(MalformedShard, NotHdf5TruncatedMissingOrADirectory) {
  {
    std::ofstream(path_, std::ios::binary | std::ios::trunc) << "tokens,inst_start\n1,2\n";
  }
  EXPECT_TRUE(has_substr(open_error(path_), "not an HDF5 file"));

  write_shard(path_, kSamples);
  fs::resize_file(path_, fs::file_size(path_) / 2);
  ::testing::internal::CaptureStderr();
  open_error(path_);
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "") << "HDF5 must not print its error stack";

  EXPECT_TRUE(has_substr(error_message<io::IoError>([&] { Shard s(dir_ / "nope.h5"); }), "nope.h5: no such file"));
  EXPECT_TRUE(has_substr(error_message<io::IoError>([&] { Shard s(dir_.path()); }), "not a regular file"));
}

TEST(Dataset, SpansShardsAndDirectoriesInOrder) {
  TempDir dir;
  fs::create_directories(dir / "more");
  write_shard(dir / "a.h5", {kSamples[0]});
  write_shard(dir / "more" / "c.h5", {kSamples[2]});
  write_shard(dir / "more" / "b.h5", {kSamples[1], kSamples[0]});
  write_shard(dir / "more" / "b2_empty.h5", {});
  std::ofstream(dir / "more" / "notes.txt") << "not a shard";
  Dataset data({dir / "a.h5", dir / "more"});
  ASSERT_EQ(data.size(), 4);
  EXPECT_EQ(data.shards().size(), 4u);
  EXPECT_EQ(data.num_tokens(), 5 + 4 + 5 + 3);
  EXPECT_EQ(data.get(0).instruction, kSamples[0].instruction);
  EXPECT_EQ(data.get(1).response, kSamples[1].response);  // more/b.h5 sorts before c.h5
  EXPECT_EQ(data.get(2).response, kSamples[0].response);
  EXPECT_EQ(data.get(3).response, kSamples[2].response);  // the empty shard is skipped over
  EXPECT_EQ(data.packed_lengths(), (std::vector<int64_t>{4, 3, 4, 2}));
  EXPECT_THROW(data.get(4), ValueError);
  EXPECT_THROW(data.get(-1), ValueError);
}

TEST(Dataset, ShardsMustAgree) {
  TempDir dir;
  write_shard(dir / "a.h5", kSamples, {50, "tok-a"});
  write_shard(dir / "b.h5", kSamples, {60, "tok-a"});
  write_shard(dir / "c.h5", kSamples, {50, "tok-c"});
  EXPECT_TRUE(has_substr(error_message<io::FormatError>([&] { Dataset d({dir / "a.h5", dir / "b.h5"}); }),
                         "b.h5: vocab_size 60 differs from 50 in"));
  EXPECT_TRUE(has_substr(error_message<io::FormatError>([&] { Dataset d({dir / "a.h5", dir / "c.h5"}); }),
                         "tokenizer_id \"tok-c\" differs from \"tok-a\""));
  fs::create_directories(dir / "none");
  EXPECT_TRUE(has_substr(error_message<io::IoError>([&] { Dataset d({dir / "none"}); }), "holds no *.h5 shards"));
  EXPECT_THROW(Dataset({}), io::IoError);
}

}  // namespace
}  // namespace ponder::data
