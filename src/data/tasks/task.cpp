#include "data/tasks/task.h"

#include "data/tasks/list_tasks.h"
#include "tensor/error.h"

namespace ponder::data {

std::vector<std::string> task_names() { return {"sort", "reverse", "dedup"}; }

std::unique_ptr<Task> make_task(std::string_view name) {
  if (name == "sort") return std::make_unique<ListTask>(ListTask::Kind::sort);
  if (name == "reverse") return std::make_unique<ListTask>(ListTask::Kind::reverse);
  if (name == "dedup") return std::make_unique<ListTask>(ListTask::Kind::dedup);
  std::string known;
  for (const std::string& n : task_names()) known += (known.empty() ? "" : ", ") + n;
  fail<ValueError>("unknown task \"", name, "\" (known tasks: ", known, ")");
}

TaskExample task_example(const Task& task, uint64_t seed, Split split, uint64_t index) {
  // Mix (seed, split, index) into one generator seed (splitmix64 finaliser steps).
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + (static_cast<uint64_t>(split) << 62) + index;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  std::mt19937_64 rng(x ^ (x >> 31));
  return task.generate(rng);
}

TaskStream::TaskStream(std::shared_ptr<const Task> task, uint64_t seed, int64_t test_examples)
    : task_(std::move(task)), seed_(seed) {
  for (int64_t i = 0; i < test_examples; ++i) {
    test_.push_back(task_example(*task_, seed_, Split::test, static_cast<uint64_t>(i)));
    test_instructions_.insert(test_.back().instruction);
  }
}

TaskExample TaskStream::peek_train() {
  while (true) {
    TaskExample e = task_example(*task_, seed_, Split::train, cursor_);
    if (!test_instructions_.count(e.instruction)) return e;
    ++cursor_;  // a test example: never train on it
  }
}

void TaskStream::pop_train() { ++cursor_; }

}  // namespace ponder::data
