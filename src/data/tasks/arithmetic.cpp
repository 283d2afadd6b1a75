#include "data/tasks/arithmetic.h"

#include <algorithm>

#include "data/tasks/random.h"
#include "tensor/error.h"

namespace ponder::data {

namespace {

// Canonical decimal: digits only, no leading zero unless the number is 0.
bool is_decimal(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
         (s[0] != '0' || s.size() == 1);
}

// Schoolbook addition and multiplication on canonical decimals.
std::string add_decimal(const std::string& a, const std::string& b) {
  std::string out;
  int carry = 0;
  for (size_t i = 0; i < std::max(a.size(), b.size()) || carry; ++i) {
    const int s = carry + (i < a.size() ? a[a.size() - 1 - i] - '0' : 0) + (i < b.size() ? b[b.size() - 1 - i] - '0' : 0);
    out.push_back(char('0' + s % 10));
    carry = s / 10;
  }
  std::reverse(out.begin(), out.end());
  return out;
}

std::string multiply_decimal(const std::string& a, const std::string& b) {
  std::vector<int> place(a.size() + b.size(), 0);  // least significant first
  for (size_t i = 0; i < a.size(); ++i)
    for (size_t j = 0; j < b.size(); ++j) place[i + j] += (a[a.size() - 1 - i] - '0') * (b[b.size() - 1 - j] - '0');
  for (size_t k = 0; k + 1 < place.size(); ++k) place[k + 1] += place[k] / 10, place[k] %= 10;
  while (place.size() > 1 && place.back() == 0) place.pop_back();
  std::string out;
  for (auto it = place.rbegin(); it != place.rend(); ++it) out.push_back(char('0' + *it));
  return out;
}

std::string random_operand(int digits, std::mt19937_64& rng) {
  std::string out;
  for (int i = 0; i < digits; ++i) {
    const bool leading = i == 0 && digits > 1;  // a leading zero would shorten the number
    out.push_back(char(leading ? '1' + draw_below(rng, 9) : '0' + draw_below(rng, 10)));
  }
  return out;
}

const char* op_name(ArithmeticTask::Op op) {
  switch (op) {
    case ArithmeticTask::Op::add: return "add";
    case ArithmeticTask::Op::mul: return "mul";
    case ArithmeticTask::Op::chain: return "chain";
  }
  return "";
}

}  // namespace

ArithmeticTask::ArithmeticTask(Options options) : options_(options) {
  PONDER_CHECK(options.digits >= 1 && options.digits <= kMaxDigits, ValueError, "ArithmeticTask: digits=", options.digits,
               " is outside 1..", kMaxDigits);
  const bool terms_ok = options.op == Op::chain ? options.terms >= kMinChainTerms && options.terms <= kMaxChainTerms
                                                : options.terms == 2;
  PONDER_CHECK(terms_ok, ValueError, "ArithmeticTask: terms=", options.terms, " is not allowed for op=", op_name(options.op));
}

std::unique_ptr<Task> ArithmeticTask::create(TaskOptions& options) {
  Options o;
  const std::string op = options.choice("op", "add", {"add", "mul", "chain"});
  o.op = op == "mul" ? Op::mul : (op == "chain" ? Op::chain : Op::add);
  o.digits = int(options.integer("digits", o.digits, 1, kMaxDigits));
  if (o.op == Op::chain) o.terms = int(options.integer("terms", kDefaultChainTerms, kMinChainTerms, kMaxChainTerms));
  else if (options.has("terms")) options.reject("terms", "only with op=chain");
  return std::make_unique<ArithmeticTask>(o);
}

std::string ArithmeticTask::name() const {
  std::string out = std::string("arithmetic:op=") + op_name(options_.op) + ",digits=" + std::to_string(options_.digits);
  if (options_.op == Op::chain) out += ",terms=" + std::to_string(options_.terms);
  return out;
}

std::string ArithmeticTask::prefix() const { return std::string(op_name(options_.op)) + ":"; }

TaskExample ArithmeticTask::generate(std::mt19937_64& rng) const {
  std::string instruction = prefix() + random_operand(options_.digits, rng);
  for (int t = 1; t < options_.terms; ++t) {
    const bool plus = options_.op == Op::add || (options_.op == Op::chain && draw_below(rng, 2) == 0);
    instruction.push_back(plus ? '+' : '*');
    instruction += random_operand(options_.digits, rng);
  }
  return {instruction, solve(instruction)};
}

std::string ArithmeticTask::solve(const std::string& instruction) const {
  if (instruction.rfind(prefix(), 0) != 0) return "";
  const std::string expression = instruction.substr(prefix().size());
  const size_t first_op = expression.find_first_of("+*");
  std::string value = expression.substr(0, first_op), steps;
  if (!is_decimal(value)) return "";
  int operators = 0;
  for (size_t at = first_op; at != std::string::npos; ++operators) {
    const char op = expression[at];
    const size_t next = expression.find_first_of("+*", at + 1);
    const std::string operand = expression.substr(at + 1, next == std::string::npos ? std::string::npos : next - at - 1);
    const bool allowed = options_.op == Op::chain || op == (options_.op == Op::add ? '+' : '*');
    if (!is_decimal(operand) || !allowed) return "";
    const std::string result = op == '+' ? add_decimal(value, operand) : multiply_decimal(value, operand);
    steps += value + op + operand + "=" + result + ";";
    value = result;
    at = next;
  }
  if (options_.op != Op::chain) return operators == 1 ? value : "";
  return operators >= 1 ? steps + value : "";
}

bool ArithmeticTask::verify(const std::string& instruction, const std::string& answer) const {
  const std::string reference = solve(instruction);
  if (reference.empty()) return false;
  const std::string final_value = reference.substr(reference.rfind(';') + 1);  // the whole reference when no steps
  return answer == reference || answer == final_value;
}

}  // namespace ponder::data
