// Helpers shared by the data tests: scratch directories and substring checks.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

namespace ponder::data::testing {

// A fresh directory under the system temp directory, removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ = std::filesystem::temp_directory_path() /
            ("ponder_data_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

inline ::testing::AssertionResult has_substr(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text << "\" does not contain \"" << part << "\"";
}

// n short sentences over a small alphabet (lowercase words, digits, '+', '=', '?', newline): enough for a
// SentencePiece model of ~64 pieces to train in well under a second.
inline std::vector<std::string> tiny_corpus(int n) {
  static const char* const words[] = {"the", "cat", "sat", "on", "a", "mat", "dog", "ran", "to", "red", "box",
                                      "what", "is", "sum", "of", "and", "big", "sun"};
  std::vector<std::string> lines;
  for (int i = 0; i < n; ++i) {
    std::string line;
    for (int w = 0; w < 3 + i % 5; ++w) line += std::string(w ? " " : "") + words[(i * 7 + w * 5) % 18];
    line += i % 3 ? " " : "\n";  // some newlines, so the model learns them
    line += std::to_string(i % 13);
    line += "+";
    line += std::to_string(i % 7);
    if (i % 2) line += "=?";
    lines.push_back(line);
  }
  return lines;
}

}  // namespace ponder::data::testing
