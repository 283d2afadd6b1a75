#include "data/tasks/sudoku.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>

#include "tensor/error.h"

namespace ponder::data {
namespace {

const std::string kPrefix = "sudoku:";

// An independent solution counter (plain arrays, candidates recomputed at every step, the blank with
// fewest candidates first), counting up to `limit`.
int count_solutions(std::string& cells, int limit) {
  auto allowed = [&](int cell, char digit) {
    const int r = cell / 9, c = cell % 9, br = r / 3 * 3, bc = c / 3 * 3;
    for (int k = 0; k < 9; ++k) {
      if (cells[r * 9 + k] == digit || cells[k * 9 + c] == digit) return false;
      if (cells[(br + k / 3) * 9 + bc + k % 3] == digit) return false;
    }
    return true;
  };
  int best = -1, fewest = 10;
  for (int cell = 0; cell < 81; ++cell) {
    if (cells[cell] != '.') continue;
    int n = 0;
    for (char d = '1'; d <= '9'; ++d) n += allowed(cell, d);
    if (n < fewest) fewest = n, best = cell;
  }
  if (best < 0) return 1;
  int found = 0;
  for (char d = '1'; d <= '9' && found < limit; ++d) {
    if (!allowed(best, d)) continue;
    cells[best] = d;
    found += count_solutions(cells, limit - found);
    cells[best] = '.';
  }
  return found;
}

std::string puzzle_of(const TaskExample& e) { return e.instruction.substr(kPrefix.size()); }

TEST(Sudoku, ConstructorRejectsImpossibleGivens) {
  EXPECT_THROW(SudokuTask(21), ValueError);
  EXPECT_THROW(SudokuTask(81), ValueError);
}

TEST(Sudoku, InstructionAndResponseLayout) {
  const SudokuTask task(36);
  const TaskExample e = task_example(task, 1, Split::train, 0);
  ASSERT_EQ(e.instruction.rfind(kPrefix, 0), 0u);
  ASSERT_EQ(e.instruction.size(), kPrefix.size() + 81);
  ASSERT_EQ(e.response.size(), 81u);
  const std::string puzzle = puzzle_of(e);
  for (int c = 0; c < 81; ++c) {
    EXPECT_TRUE(puzzle[c] == '.' || puzzle[c] == e.response[c]) << "cell " << c;
    EXPECT_TRUE(e.response[c] >= '1' && e.response[c] <= '9');
  }
}

// Pinned so that a change to the generator, which would change every stored dataset and resumed run,
// is noticed.
TEST(Sudoku, FirstExampleOfSeedOneIsPinned) {
  const TaskExample e = task_example(SudokuTask(36), 1, Split::train, 0);
  EXPECT_EQ(e.instruction, "sudoku:41......7687....51.52791.6...61...4......72.67.36...8.27..638...6497.5...3...2...");
  EXPECT_EQ(e.response, "419856327687234951352791468896125743541387296723649185275463819164978532938512674");
}

TEST(Sudoku, PuzzlesHaveTheGivensAskedForAndOneSolution) {
  for (int givens : {22, 26, 36, 50, 80}) {
    const SudokuTask task(givens);
    const int samples = givens == 22 ? 2 : 6;  // 22 givens take many full grids to reach
    for (int i = 0; i < samples; ++i) {
      const TaskExample e = task_example(task, 9, Split::test, uint64_t(i));
      std::string puzzle = puzzle_of(e);
      EXPECT_EQ(81 - std::count(puzzle.begin(), puzzle.end(), '.'), givens) << e.instruction;
      EXPECT_EQ(count_solutions(puzzle, 2), 1) << e.instruction;
    }
  }
}

TEST(Sudoku, CorruptedAnswersAreRejected) {
  const SudokuTask task(30);
  const TaskExample e = task_example(task, 4, Split::train, 2);
  const std::string puzzle = puzzle_of(e);
  ASSERT_TRUE(task.verify(e.instruction, e.response));

  const size_t blank = puzzle.find('.'), given = puzzle.find_first_not_of('.');
  std::string changed_blank = e.response;  // a blank cell with another digit: a row repeats it
  changed_blank[blank] = e.response[blank] == '9' ? '1' : char(e.response[blank] + 1);
  EXPECT_FALSE(task.verify(e.instruction, changed_blank));

  // Swapping two columns of the solution keeps a valid grid but moves the givens.
  std::string swapped_columns = e.response;
  for (int r = 0; r < 9; ++r) std::swap(swapped_columns[r * 9 + 0], swapped_columns[r * 9 + 1]);
  EXPECT_FALSE(task.verify(e.instruction, swapped_columns));
  EXPECT_TRUE(SudokuTask(30).verify(kPrefix + std::string(81, '.'), swapped_columns));  // valid without givens

  std::string changed_given = e.response;
  changed_given[given] = '.';
  EXPECT_FALSE(task.verify(e.instruction, changed_given));
  EXPECT_FALSE(task.verify(e.instruction, e.response.substr(0, 80)));
  EXPECT_FALSE(task.verify(e.instruction, e.response + "1"));
  EXPECT_FALSE(task.verify(e.instruction, ""));
  std::string zero = e.response;
  zero[blank] = '0';
  EXPECT_FALSE(task.verify(e.instruction, zero));
  EXPECT_FALSE(task.verify("sudoku:" + puzzle.substr(1), e.response));  // not an instruction of this task
  EXPECT_FALSE(task.verify("sort:" + puzzle, e.response));
}

// Blanks a "deadly rectangle" of a solution: four cells at the corners of a rectangle in two boxes
// holding x y / y x, which can be swapped to y x / x y. Sets `other` to that second solution.
std::optional<std::string> blank_swappable_rectangle(const std::string& solution, std::string& other) {
  for (int r1 = 0; r1 < 9; ++r1)
    for (int r2 = r1 + 1; r2 < 9; ++r2)
      for (int c1 = 0; c1 < 9; ++c1)
        for (int c2 = c1 + 1; c2 < 9; ++c2) {
          const int a = r1 * 9 + c1, b = r1 * 9 + c2, c = r2 * 9 + c1, d = r2 * 9 + c2;
          const bool two_boxes = r1 / 3 == r2 / 3 || c1 / 3 == c2 / 3;
          if (!two_boxes || solution[a] != solution[d] || solution[b] != solution[c]) continue;
          std::string puzzle = solution;
          for (int cell : {a, b, c, d}) puzzle[cell] = '.';
          other = solution;
          std::swap(other[a], other[b]);
          std::swap(other[c], other[d]);
          return puzzle;
        }
  return std::nullopt;
}

TEST(Sudoku, AnyValidSolutionOfTheGivensIsAccepted) {
  for (uint64_t i = 0; i < 10; ++i) {
    const std::string solution = task_example(SudokuTask(80), 2, Split::train, i).response;
    std::string other;
    const std::optional<std::string> puzzle = blank_swappable_rectangle(solution, other);
    if (!puzzle) continue;
    std::string cells = *puzzle;
    ASSERT_EQ(count_solutions(cells, 3), 2);
    EXPECT_TRUE(SudokuTask(77).verify(kPrefix + *puzzle, solution));
    EXPECT_TRUE(SudokuTask(77).verify(kPrefix + *puzzle, other));
    return;
  }
  FAIL() << "none of ten random grids has a swappable rectangle";
}

}  // namespace
}  // namespace ponder::data
