// Synthetic reasoning tasks: instruction -> response pairs generated from a seed, each with a
// verifier. Example i of a split is a pure function of (task, seed, split, i), so a stream of
// examples is reproducible and resumable by index; the training stream never contains a test
// example (TaskStream checks every training example against the test set's hashes).
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace ponder::data {

struct TaskExample {
  std::string instruction;
  std::string response;
};

class Task {
 public:
  virtual ~Task() = default;
  virtual std::string name() const = 0;
  virtual TaskExample generate(std::mt19937_64& rng) const = 0;
  // Whether `answer` correctly answers `instruction` (the reference answer always does).
  virtual bool verify(const std::string& instruction, const std::string& answer) const = 0;
};

// A task from its spec, "name" or "name:key=value,...", e.g. "sudoku:givens=30", "maze:n=11,loops=2",
// "arithmetic:op=mul,digits=4" (see task_options.h). An unknown name is a ValueError listing the known
// ones; an unknown or invalid option one naming the task, the key and the allowed values. The task's
// name() is its full canonical spec, every option spelt out.
std::unique_ptr<Task> make_task(std::string_view spec);
std::vector<std::string> task_names();

enum class Split : uint8_t { train = 0, test = 1 };

// Example `index` of a split (deterministic).
TaskExample task_example(const Task& task, uint64_t seed, Split split, uint64_t index);

// The test examples, and a training stream that skips any example equal to one of them.
class TaskStream {
 public:
  TaskStream(std::shared_ptr<const Task> task, uint64_t seed, int64_t test_examples);
  const std::vector<TaskExample>& test() const { return test_; }
  // The next training example without consuming it; pop_train() consumes it. The cursor counts the
  // training indices consumed (test collisions are skipped over). A ValueError when so many test
  // examples come in a row that the test set must cover (nearly) the whole task.
  TaskExample peek_train();
  void pop_train();
  uint64_t cursor() const { return cursor_; }
  void set_cursor(uint64_t cursor) { cursor_ = cursor; }
  const Task& task() const { return *task_; }

 private:
  std::shared_ptr<const Task> task_;
  uint64_t seed_;
  std::vector<TaskExample> test_;
  std::unordered_set<std::string> test_instructions_;
  uint64_t cursor_ = 0;
};

}  // namespace ponder::data
