#include "io/safetensors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "ops/ops.h"
#include "support/test_util.h"

namespace ponder::io {
namespace {
namespace fs = std::filesystem;

fs::path temp_path(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("ponder_st_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir / name;
}

std::string file_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A file image with the given JSON header and data section.
std::string image(const std::string& header, const std::string& data) {
  std::string s;
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
  return s + header + data;
}

TEST(Safetensors, RoundTripsEveryDtype) {
  Generator g(1);
  NamedTensors tensors = {
      {"f32", randn({3, 4}, g)},
      {"f64", randn({2}, g, {.dtype = DType::f64})},
      {"bf16", randn({5}, g).to(DType::bf16)},
      {"i32", arange(0, 6, 1, {.dtype = DType::i32}).reshape({2, 3})},
      {"i64", arange(-3, 3)},
      {"u8", tensor({0, 1, 255}, {3}, {.dtype = DType::u8})},
      {"scalar", full({}, 2.5)},
      {"empty", zeros({0, 3})},
      {"transposed", randn({3, 2}, g).t()},
  };
  fs::path p = temp_path("all.safetensors");
  save_safetensors(p, tensors);
  SafetensorsContents loaded = load_safetensors(p);
  EXPECT_EQ(loaded.metadata.at("format"), "pt");
  ASSERT_EQ(loaded.tensors.size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    const Tensor& l = loaded.tensors.at(name);
    EXPECT_EQ(l.dtype(), t.dtype()) << name;
    EXPECT_EQ(l.shape(), t.shape()) << name;
    EXPECT_EQ(l.to_vector<double>(), t.to_vector<double>()) << name;
  }
  // The header is padded so the data section starts at an 8-byte boundary.
  std::string bytes = file_bytes(p);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_FALSE(fs::exists(p.string() + ".tmp." + std::to_string(::getpid())));
}

TEST(Safetensors, RejectsMalformedFilesWithOneClearLine) {
  const std::string ok_header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const std::string ok_data(8, '\0');
  EXPECT_NO_THROW(parse_safetensors(image(ok_header, ok_data), "ok"));
  struct Case {
    std::string bytes, message;
  };
  const Case cases[] = {
      {"abc", "too short"},
      {image(ok_header, ok_data).substr(0, 20), "header length"},
      {image("{not json", ""), "not a JSON object"},
      {image(R"([1,2])", ""), "not a JSON object"},
      {image(R"({"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}})", std::string(4, '\0')), "unsupported dtype F16"},
      {image(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", ok_data), "non-negative integers"},
      {image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}})", ok_data), "outside the data section"},
      {image(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", ok_data), "shape needs 12"},
      {image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", ok_data), "starts at byte 4"},
      {image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", ok_data), "cover 4"},
      {image(R"({"a":{"dtype":"F32","shape":[2]}})", ok_data), "data_offsets must be"},
      {image(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", ok_data), "too large"},
      {image(R"({"__metadata__":{"format":1}})", ""), "not a string"},
      // 2^62 doubles are 2^65 bytes, which wraps to 0: refused before anything is allocated.
      {image(R"({"a":{"dtype":"F64","shape":[2147483648,2147483648],"data_offsets":[0,0]}})", ""),
       "4611686018427387904 elements"},
  };
  for (const Case& c : cases) {
    try {
      parse_safetensors(c.bytes, "bad.safetensors");
      ADD_FAILURE() << "accepted a file that should fail with: " << c.message;
    } catch (const FormatError& e) {
      std::string what = e.what();
      EXPECT_NE(what.find(c.message), std::string::npos) << what;
      EXPECT_EQ(what.rfind("bad.safetensors", 0), 0u) << what;
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    }
  }
}

TEST(Safetensors, MissingFileAndUnwritableDirectory) {
  EXPECT_THROW(load_safetensors("/nonexistent/x.safetensors"), IoError);
  EXPECT_THROW(save_safetensors("/nonexistent/dir/x.safetensors", {{"a", zeros({1})}}), IoError);
}

TEST(Safetensors, AFailedSaveLeavesThePreviousFileIntact) {
  fs::path p = temp_path("keep.safetensors");
  save_safetensors(p, {{"a", ones({4})}});
  std::string before = file_bytes(p);
  EXPECT_THROW(save_safetensors(p, {{"a", ones({1})}, {"a", ones({1})}}), ValueError);
  EXPECT_EQ(file_bytes(p), before);
  // An undefined tensor (an optional batch field, say) is named, not dereferenced.
  EXPECT_THAT([&] { save_safetensors(p, {{"a", ones({1})}, {"prefix_len", Tensor()}}); },
              ::testing::ThrowsMessage<ValueError>(::testing::HasSubstr("\"prefix_len\" is undefined")));
  EXPECT_EQ(file_bytes(p), before);
}

}  // namespace
}  // namespace ponder::io
