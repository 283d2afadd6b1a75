// Task specs: "name" or "name:key=value,key=value" ("maze:n=11,loops=2"). A task's factory reads its
// typed options from TaskOptions; a bad spec is one ValueError naming the task, the key and the
// allowed values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ponder::data {

struct TaskSpec {
  std::string name;
  std::vector<std::pair<std::string, std::string>> options;  // in the order given
};

// Splits a spec; an option without '=', an empty key or value, or a repeated key is a ValueError.
TaskSpec parse_task_spec(std::string_view spec);

class TaskOptions {
 public:
  explicit TaskOptions(TaskSpec spec) : spec_(std::move(spec)) {}
  const std::string& task() const { return spec_.name; }

  // The value of `key` (or `fallback` when the spec omits it), one of lo, lo + step, ..., hi.
  int64_t integer(std::string_view key, int64_t fallback, int64_t lo, int64_t hi, int64_t step = 1);
  std::string choice(std::string_view key, std::string fallback, const std::vector<std::string>& allowed);
  bool boolean(std::string_view key, bool fallback);  // "true" or "false"
  bool has(std::string_view key) const { return find(key) != nullptr; }

  // Rejects any key that none of the calls above asked for.
  void finish() const;
  // A ValueError for the value given for `key`, showing what is allowed.
  [[noreturn]] void reject(std::string_view key, std::string_view allowed) const;

 private:
  const std::string* find(std::string_view key) const;
  const std::string* ask(std::string_view key);  // find(), remembering the key as allowed

  TaskSpec spec_;
  std::vector<std::string> allowed_keys_;
};

}  // namespace ponder::data
