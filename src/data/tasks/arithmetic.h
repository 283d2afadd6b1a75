// Multi-digit arithmetic, exact at any size (numbers are decimal strings): "add:4821+937" -> "5758",
// "mul:48*93" -> "4464", and chains evaluated left to right with their steps,
// "chain:12+7*3" -> "12+7=19;19*3=57;57". Operands have exactly `digits` digits. For a chain,
// verify() accepts the final value alone or with all the steps, each of them correct.
#pragma once

#include "data/tasks/task.h"
#include "data/tasks/task_options.h"

namespace ponder::data {

class ArithmeticTask : public Task {
 public:
  enum class Op { add, mul, chain };
  struct Options {
    Op op = Op::add;
    int digits = 3;
    int terms = 2;  // operands; more than 2 only for a chain
  };
  static constexpr int kMaxDigits = 12, kMinChainTerms = 2, kMaxChainTerms = 10, kDefaultChainTerms = 3;

  explicit ArithmeticTask(Options options);  // ValueError for options that create() would reject
  static std::unique_ptr<Task> create(TaskOptions& options);  // op=add|mul|chain, digits=1..12, terms=2..10 (chain)

  std::string name() const override;
  TaskExample generate(std::mt19937_64& rng) const override;
  bool verify(const std::string& instruction, const std::string& answer) const override;

 private:
  // The reference response to an instruction of this task's kind, or "" when it is not one.
  std::string solve(const std::string& instruction) const;
  std::string prefix() const;
  Options options_;
};

}  // namespace ponder::data
