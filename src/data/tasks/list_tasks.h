// List tasks over digit strings: "sort:4193" -> "1349", "reverse:4193" -> "3914",
// "dedup:44193" -> "4193" (first occurrences, in order). Lists have 4 to 10 digits.
#pragma once

#include "data/tasks/task.h"

namespace ponder::data {

class ListTask : public Task {
 public:
  enum class Kind { sort, reverse, dedup };
  explicit ListTask(Kind kind) : kind_(kind) {}
  std::string name() const override;
  TaskExample generate(std::mt19937_64& rng) const override;
  bool verify(const std::string& instruction, const std::string& answer) const override;

  static constexpr int kMinLength = 4, kMaxLength = 10;

 private:
  std::string solve(const std::string& digits) const;
  Kind kind_;
};

}  // namespace ponder::data
