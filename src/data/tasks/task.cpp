#include "data/tasks/task.h"

#include <array>

#include "data/tasks/arithmetic.h"
#include "data/tasks/list_tasks.h"
#include "data/tasks/maze.h"
#include "data/tasks/sudoku.h"
#include "tensor/error.h"

namespace ponder::data {

namespace {
struct TaskFactory {
  const char* name;
  std::unique_ptr<Task> (*create)(TaskOptions& options);
};

template <ListTask::Kind kind>
std::unique_ptr<Task> list_task(TaskOptions&) {  // list tasks take no options
  return std::make_unique<ListTask>(kind);
}

const std::array<TaskFactory, 6> kTasks = {{
    {"sort", &list_task<ListTask::Kind::sort>},
    {"reverse", &list_task<ListTask::Kind::reverse>},
    {"dedup", &list_task<ListTask::Kind::dedup>},
    {"sudoku", &SudokuTask::create},
    {"maze", &MazeTask::create},
    {"arithmetic", &ArithmeticTask::create},
}};
}  // namespace

std::vector<std::string> task_names() {
  std::vector<std::string> names;
  for (const TaskFactory& f : kTasks) names.emplace_back(f.name);
  return names;
}

std::unique_ptr<Task> make_task(std::string_view spec) {
  TaskOptions options(parse_task_spec(spec));
  for (const TaskFactory& f : kTasks) {
    if (options.task() != f.name) continue;
    std::unique_ptr<Task> task = f.create(options);
    options.finish();
    return task;
  }
  std::string known;
  for (const std::string& n : task_names()) known += (known.empty() ? "" : ", ") + n;
  fail<ValueError>("unknown task \"", options.task(), "\" (known tasks: ", known, ")");
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
  // A small task (one-digit additions) can be all but covered by the test set: fail rather than spin.
  constexpr int kMaxSkipsInARow = 10000;
  for (int skipped = 0; skipped < kMaxSkipsInARow; ++skipped) {
    TaskExample e = task_example(*task_, seed_, Split::train, cursor_);
    if (!test_instructions_.count(e.instruction)) return e;
    ++cursor_;  // a test example: never train on it
  }
  fail<ValueError>("task ", task_->name(), ": ", kMaxSkipsInARow, " training examples in a row are test examples; the ",
                   test_.size(), " test examples cover (nearly) every example of this task: use fewer or a larger task");
}

void TaskStream::pop_train() { ++cursor_; }

}  // namespace ponder::data
