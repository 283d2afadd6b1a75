// Mazes on an N x N grid (odd N): "maze:" + the rows joined by '/' ('#' wall, '.' open, 'S' start,
// 'G' goal) -> the moves (U, D, L, R) of a shortest path from S to G, one grid cell per move.
// Rooms sit at odd coordinates; a randomized depth-first search carves a perfect maze (exactly one
// path between two rooms), then `loops` more walls between rooms are opened. With `unique`, only
// mazes whose shortest path from S to G is unique are emitted. verify() accepts any shortest path.
#pragma once

#include "data/tasks/task.h"
#include "data/tasks/task_options.h"

namespace ponder::data {

class MazeTask : public Task {
 public:
  struct Options {
    int n = 9;
    int loops = 0;
    bool unique = true;
  };
  static constexpr int kMinSize = 5, kMaxSize = 39;

  explicit MazeTask(Options options);  // ValueError for options that create() would reject
  static std::unique_ptr<Task> create(TaskOptions& options);  // n=5..39 (odd), loops=0..(n/2-1)^2, unique

  // The walls between rooms that a perfect maze of side n keeps closed: the most `loops` can open.
  static int max_loops(int n) { return (n / 2 - 1) * (n / 2 - 1); }

  std::string name() const override;
  TaskExample generate(std::mt19937_64& rng) const override;
  bool verify(const std::string& instruction, const std::string& answer) const override;

 private:
  Options options_;
};

}  // namespace ponder::data
