#include "data/tasks/arithmetic.h"

#include <gtest/gtest.h>

#include "tensor/error.h"

namespace ponder::data {
namespace {

using Int = unsigned __int128;  // exact for every value these tests compute (< 10^38)

std::string text(Int v) {
  std::string out;
  do out.insert(out.begin(), char('0' + int(v % 10))); while ((v /= 10) != 0);
  return out;
}

Int value(const std::string& digits) {
  Int v = 0;
  for (char c : digits) v = v * 10 + Int(c - '0');
  return v;
}

// "a+b*c" -> operands and operators, split independently of the task.
void split(const std::string& expression, std::vector<std::string>& operands, std::string& operators) {
  operands.assign(1, "");
  for (char c : expression) {
    if (c == '+' || c == '*') operators.push_back(c), operands.emplace_back();
    else operands.back().push_back(c);
  }
}

std::string after_prefix(const std::string& instruction) { return instruction.substr(instruction.find(':') + 1); }

TEST(Arithmetic, ConstructorRejectsImpossibleOptions) {
  EXPECT_THROW(ArithmeticTask({.digits = 0}), ValueError);
  EXPECT_THROW(ArithmeticTask({.digits = 13}), ValueError);
  EXPECT_THROW(ArithmeticTask({.op = ArithmeticTask::Op::add, .terms = 3}), ValueError);
  EXPECT_THROW(ArithmeticTask({.op = ArithmeticTask::Op::chain, .terms = 11}), ValueError);
}

TEST(Arithmetic, AdditionAndMultiplicationMatchExactIntegers) {
  for (int digits : {1, 2, 5, 12}) {
    for (auto op : {ArithmeticTask::Op::add, ArithmeticTask::Op::mul}) {
      const ArithmeticTask task({.op = op, .digits = digits});
      const char sign = op == ArithmeticTask::Op::add ? '+' : '*';
      for (uint64_t i = 0; i < 20; ++i) {
        const TaskExample e = task_example(task, 1, Split::train, i);
        EXPECT_EQ(e.instruction.substr(0, 4), op == ArithmeticTask::Op::add ? "add:" : "mul:");
        std::vector<std::string> operands;
        std::string operators;
        split(after_prefix(e.instruction), operands, operators);
        ASSERT_EQ(operators, std::string(1, sign)) << e.instruction;
        for (const std::string& x : operands) {
          EXPECT_EQ(int(x.size()), digits) << e.instruction;
          EXPECT_TRUE(digits == 1 || x[0] != '0') << e.instruction;
        }
        const Int a = value(operands[0]), b = value(operands[1]);
        EXPECT_EQ(e.response, text(sign == '+' ? a + b : a * b)) << e.instruction;
      }
    }
  }
}

TEST(Arithmetic, ChainsShowEveryLeftToRightStep) {
  const ArithmeticTask task({.op = ArithmeticTask::Op::chain, .digits = 2, .terms = 5});
  int products = 0;
  for (uint64_t i = 0; i < 20; ++i) {
    const TaskExample e = task_example(task, 2, Split::train, i);
    ASSERT_EQ(e.instruction.rfind("chain:", 0), 0u);
    std::vector<std::string> operands;
    std::string operators;
    split(after_prefix(e.instruction), operands, operators);
    ASSERT_EQ(operands.size(), 5u);
    Int acc = value(operands[0]);
    std::string expected;
    for (size_t k = 0; k < operators.size(); ++k) {
      const Int next = operators[k] == '+' ? acc + value(operands[k + 1]) : acc * value(operands[k + 1]);
      expected += text(acc) + operators[k] + operands[k + 1] + "=" + text(next) + ";";
      acc = next;
      products += operators[k] == '*';
    }
    EXPECT_EQ(e.response, expected + text(acc)) << e.instruction;
  }
  EXPECT_GT(products, 0);  // chains mix both operations
}

TEST(Arithmetic, LongOperandsStayExact) {
  const ArithmeticTask mul({.op = ArithmeticTask::Op::mul, .digits = 12});
  EXPECT_TRUE(mul.verify("mul:999999999999*999999999999", "999999999998000000000001"));
  const ArithmeticTask add({.op = ArithmeticTask::Op::add, .digits = 12});
  EXPECT_TRUE(add.verify("add:999999999999+1", "1000000000000"));
  // Ten 12-digit factors: 120 digits, checked modulo a prime.
  const ArithmeticTask chain({.op = ArithmeticTask::Op::chain, .digits = 12, .terms = 10});
  const TaskExample e = task_example(chain, 3, Split::train, 0);
  std::vector<std::string> operands;
  std::string operators;
  split(after_prefix(e.instruction), operands, operators);
  const Int p = 1'000'000'007;
  auto mod = [&](const std::string& digits) {
    Int v = 0;
    for (char c : digits) v = (v * 10 + Int(c - '0')) % p;
    return v;
  };
  Int acc = mod(operands[0]);
  for (size_t k = 0; k < operators.size(); ++k) acc = operators[k] == '+' ? (acc + mod(operands[k + 1])) % p : acc * mod(operands[k + 1]) % p;
  const std::string final_value = e.response.substr(e.response.rfind(';') + 1);
  EXPECT_EQ(mod(final_value), acc);
  EXPECT_GT(final_value.size(), 24u);
}

TEST(Arithmetic, CorruptedAnswersAreRejected) {
  const ArithmeticTask add({.op = ArithmeticTask::Op::add, .digits = 3});
  EXPECT_TRUE(add.verify("add:668+518", "1186"));
  EXPECT_FALSE(add.verify("add:668+518", "1187"));
  EXPECT_FALSE(add.verify("add:668+518", "01186"));
  EXPECT_FALSE(add.verify("add:668+518", "1186 "));
  EXPECT_FALSE(add.verify("add:668+518", ""));
  EXPECT_FALSE(add.verify("mul:668*518", "346024"));  // another task's instruction
  EXPECT_FALSE(add.verify("add:668*518", "346024"));
  EXPECT_FALSE(add.verify("add:668+518+1", "1187"));

  const ArithmeticTask chain({.op = ArithmeticTask::Op::chain, .digits = 2, .terms = 3});
  const std::string instruction = "chain:12+7*3";
  EXPECT_TRUE(chain.verify(instruction, "12+7=19;19*3=57;57"));
  EXPECT_TRUE(chain.verify(instruction, "57"));  // the final value alone
  EXPECT_FALSE(chain.verify(instruction, "58"));
  EXPECT_FALSE(chain.verify(instruction, "12+7=19;19*3=57;58"));  // right steps, wrong final value
  EXPECT_FALSE(chain.verify(instruction, "12+7=20;20*3=60;60"));  // a wrong step carried through
  EXPECT_FALSE(chain.verify(instruction, "12+7=19;19*3=57"));     // no final value
  EXPECT_FALSE(chain.verify(instruction, "19*3=57;57"));          // a step missing
  EXPECT_FALSE(chain.verify(instruction, "7*3=21;12+21=33;33"));  // precedence, not left to right
}

}  // namespace
}  // namespace ponder::data
