// Sudoku 9x9: "sudoku:" + the 81 cells row by row ('1'..'9', '.' blank) -> the 81 digits of the
// solution. The difficulty knob is the number of givens; every puzzle has exactly one solution, and
// verify() accepts any valid full grid that keeps the givens.
#pragma once

#include "data/tasks/task.h"
#include "data/tasks/task_options.h"

namespace ponder::data {

class SudokuTask : public Task {
 public:
  static constexpr int kMinGivens = 22, kMaxGivens = 80, kDefaultGivens = 36;

  explicit SudokuTask(int givens);  // ValueError outside kMinGivens..kMaxGivens
  static std::unique_ptr<Task> create(TaskOptions& options);  // givens=22..80

  std::string name() const override;
  TaskExample generate(std::mt19937_64& rng) const override;
  bool verify(const std::string& instruction, const std::string& answer) const override;

 private:
  int givens_;
};

}  // namespace ponder::data
