#include "data/tasks/list_tasks.h"

#include <algorithm>

#include "data/tasks/random.h"

namespace ponder::data {

std::string ListTask::name() const {
  switch (kind_) {
    case Kind::sort: return "sort";
    case Kind::reverse: return "reverse";
    case Kind::dedup: return "dedup";
  }
  return "list";
}

std::string ListTask::solve(const std::string& digits) const {
  std::string out = digits;
  switch (kind_) {
    case Kind::sort: std::sort(out.begin(), out.end()); break;
    case Kind::reverse: std::reverse(out.begin(), out.end()); break;
    case Kind::dedup: {
      out.clear();
      for (char c : digits)
        if (out.find(c) == std::string::npos) out.push_back(c);
      break;
    }
  }
  return out;
}

TaskExample ListTask::generate(std::mt19937_64& rng) const {
  const int length = kMinLength + static_cast<int>(draw_below(rng, kMaxLength - kMinLength + 1));
  std::string digits;
  for (int i = 0; i < length; ++i) digits.push_back(static_cast<char>('0' + draw_below(rng, 10)));
  return {name() + ":" + digits, solve(digits)};
}

bool ListTask::verify(const std::string& instruction, const std::string& answer) const {
  const std::string prefix = name() + ":";
  if (instruction.rfind(prefix, 0) != 0) return false;
  return answer == solve(instruction.substr(prefix.size()));
}

}  // namespace ponder::data
