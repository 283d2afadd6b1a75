#include "data/tasks/sudoku.h"

#include <array>
#include <bit>
#include <optional>
#include <vector>

#include "data/tasks/random.h"
#include "tensor/error.h"

namespace ponder::data {

namespace {

constexpr int kCells = 81;
constexpr uint16_t kAllDigits = 0x3FE;  // bits 1..9
const std::string kPrefix = "sudoku:";

int box_of(int cell) { return (cell / 27) * 3 + (cell % 9) / 3; }

// A grid with the digits each row, column and box already holds as bitmasks.
class Board {
 public:
  bool can_place(int cell, int digit) const { return candidates(cell) & (1u << digit); }
  uint16_t candidates(int cell) const {
    return kAllDigits & ~(rows_[cell / 9] | cols_[cell % 9] | boxes_[box_of(cell)]);
  }
  void place(int cell, int digit) { set(cell, digit, true); }
  void clear(int cell) { set(cell, digits_[cell], false); }
  int digit(int cell) const { return digits_[cell]; }

  // The blank cell with the fewest candidates, or nullopt when the grid is full.
  std::optional<int> most_constrained_blank() const {
    std::optional<int> best;
    int fewest = 10;
    for (int c = 0; c < kCells; ++c) {
      if (digits_[c]) continue;
      const int n = std::popcount(candidates(c));
      if (n < fewest) fewest = n, best = c;
      if (n <= 1) break;
    }
    return best;
  }

 private:
  void set(int cell, int digit, bool on) {
    const uint16_t bit = uint16_t(1u << digit);
    rows_[cell / 9] ^= bit, cols_[cell % 9] ^= bit, boxes_[box_of(cell)] ^= bit;
    digits_[cell] = on ? uint8_t(digit) : 0;
  }
  std::array<uint8_t, kCells> digits_{};
  std::array<uint16_t, 9> rows_{}, cols_{}, boxes_{};
};

// Solutions of the board, counted up to `limit` by backtracking; the board is left as it was.
int count_solutions(Board& board, int limit) {
  const std::optional<int> cell = board.most_constrained_blank();
  if (!cell) return 1;
  int found = 0;
  for (uint16_t left = board.candidates(*cell); left && found < limit; left &= left - 1) {
    board.place(*cell, std::countr_zero(left));
    found += count_solutions(board, limit - found);
    board.clear(*cell);
  }
  return found;
}

// Completes the board with candidates tried in random order; false when it cannot be completed.
bool fill_randomly(Board& board, std::mt19937_64& rng) {
  const std::optional<int> cell = board.most_constrained_blank();
  if (!cell) return true;
  std::vector<int> digits;
  for (uint16_t left = board.candidates(*cell); left; left &= left - 1) digits.push_back(std::countr_zero(left));
  shuffle_in_place(digits, rng);
  for (int d : digits) {
    board.place(*cell, d);
    if (fill_randomly(board, rng)) return true;
    board.clear(*cell);
  }
  return false;
}

// Blanks cells of a full board in random order while the solution stays unique, down to `givens`
// filled cells; false when the puzzle became minimal (no cell can go) above that count.
bool dig_holes(Board& board, int givens, std::mt19937_64& rng) {
  std::vector<int> order(kCells);
  for (int c = 0; c < kCells; ++c) order[c] = c;
  shuffle_in_place(order, rng);
  int filled = kCells;
  for (int c : order) {
    if (filled == givens) break;
    const int d = board.digit(c);
    board.clear(c);
    if (count_solutions(board, 2) == 1) --filled;
    else board.place(c, d);
  }
  return filled == givens;
}

std::string cells_text(const Board& board) {
  std::string out(kCells, '.');
  for (int c = 0; c < kCells; ++c)
    if (board.digit(c)) out[c] = char('0' + board.digit(c));
  return out;
}

// The puzzle's cells, or nullopt when the instruction is not a sudoku instruction.
std::optional<std::string> puzzle_cells(const std::string& instruction) {
  if (instruction.size() != kPrefix.size() + kCells || instruction.rfind(kPrefix, 0) != 0) return std::nullopt;
  std::string cells = instruction.substr(kPrefix.size());
  for (char ch : cells)
    if (ch != '.' && (ch < '1' || ch > '9')) return std::nullopt;
  return cells;
}

}  // namespace

SudokuTask::SudokuTask(int givens) : givens_(givens) {
  PONDER_CHECK(givens >= kMinGivens && givens <= kMaxGivens, ValueError, "SudokuTask: ", givens, " givens is outside ",
               kMinGivens, "..", kMaxGivens);
}

std::unique_ptr<Task> SudokuTask::create(TaskOptions& options) {
  return std::make_unique<SudokuTask>(int(options.integer("givens", kDefaultGivens, kMinGivens, kMaxGivens)));
}

std::string SudokuTask::name() const { return "sudoku:givens=" + std::to_string(givens_); }

TaskExample SudokuTask::generate(std::mt19937_64& rng) const {
  while (true) {  // few givens need several full grids: random digging often gets stuck above 22
    Board board;
    fill_randomly(board, rng);  // an empty board always completes
    const std::string solution = cells_text(board);
    if (dig_holes(board, givens_, rng)) return {kPrefix + cells_text(board), solution};
  }
}

bool SudokuTask::verify(const std::string& instruction, const std::string& answer) const {
  const std::optional<std::string> puzzle = puzzle_cells(instruction);
  if (!puzzle || answer.size() != kCells) return false;
  Board board;
  for (int c = 0; c < kCells; ++c) {
    const char ch = answer[c];
    const bool keeps_given = (*puzzle)[c] == '.' || (*puzzle)[c] == ch;
    if (ch < '1' || ch > '9' || !keeps_given || !board.can_place(c, ch - '0')) return false;
    board.place(c, ch - '0');
  }
  return true;
}

}  // namespace ponder::data
