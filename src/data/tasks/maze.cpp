#include "data/tasks/maze.h"

#include <algorithm>
#include <array>
#include <optional>

#include "data/tasks/random.h"
#include "tensor/error.h"

namespace ponder::data {

namespace {

const std::string kPrefix = "maze:";
constexpr char kWall = '#', kOpen = '.', kStart = 'S', kGoal = 'G';

struct Move {
  char name;
  int dy, dx;
};
constexpr std::array<Move, 4> kMoves = {{{'U', -1, 0}, {'D', 1, 0}, {'L', 0, -1}, {'R', 0, 1}}};

// A square grid of characters, row-major.
struct Grid {
  int n = 0;
  std::string cells;

  char at(int y, int x) const { return cells[size_t(y) * n + x]; }
  char& at(int y, int x) { return cells[size_t(y) * n + x]; }
  bool inside(int y, int x) const { return y >= 0 && x >= 0 && y < n && x < n; }
  bool walkable(int y, int x) const { return inside(y, x) && at(y, x) != kWall; }
  int index_of(char c) const { return int(cells.find(c)); }
};

// Shortest-path lengths from one cell and the number of shortest paths to each (capped at 2).
struct Distances {
  std::vector<int> steps;       // -1 where unreachable
  std::vector<uint8_t> paths;
};

Distances breadth_first(const Grid& g, int from) {
  Distances d{std::vector<int>(g.cells.size(), -1), std::vector<uint8_t>(g.cells.size(), 0)};
  std::vector<int> queue = {from};
  d.steps[from] = 0, d.paths[from] = 1;
  for (size_t head = 0; head < queue.size(); ++head) {
    const int cell = queue[head], y = cell / g.n, x = cell % g.n;
    for (const Move& m : kMoves) {
      if (!g.walkable(y + m.dy, x + m.dx)) continue;
      const int next = cell + m.dy * g.n + m.dx;
      if (d.steps[next] < 0) d.steps[next] = d.steps[cell] + 1, queue.push_back(next);
      if (d.steps[next] == d.steps[cell] + 1) d.paths[next] = uint8_t(std::min(2, d.paths[next] + d.paths[cell]));
    }
  }
  return d;
}

// The moves of a shortest path, traced back from the goal (the first move in kMoves order when
// several shortest paths exist).
std::string shortest_moves(const Grid& g, const Distances& d, int goal) {
  std::string moves;
  for (int cell = goal; d.steps[cell] > 0;) {
    const int y = cell / g.n, x = cell % g.n;
    for (const Move& m : kMoves) {
      const int prev = cell - m.dy * g.n - m.dx;  // the cell this move comes from
      if (g.walkable(y - m.dy, x - m.dx) && d.steps[prev] == d.steps[cell] - 1) {
        moves.push_back(m.name), cell = prev;
        break;
      }
    }
  }
  std::reverse(moves.begin(), moves.end());
  return moves;
}

// A perfect maze: rooms at odd coordinates joined by a randomized depth-first search.
Grid carve_perfect_maze(int n, std::mt19937_64& rng) {
  Grid g{n, std::string(size_t(n) * n, kWall)};
  const int rooms = n / 2;
  const int first = int(draw_below(rng, uint64_t(rooms) * rooms));
  std::vector<std::pair<int, int>> stack = {{2 * (first / rooms) + 1, 2 * (first % rooms) + 1}};
  g.at(stack[0].first, stack[0].second) = kOpen;
  while (!stack.empty()) {
    const auto [y, x] = stack.back();
    std::vector<Move> fresh;  // moves to rooms not yet carved
    for (const Move& m : kMoves)
      if (g.inside(y + 2 * m.dy, x + 2 * m.dx) && g.at(y + 2 * m.dy, x + 2 * m.dx) == kWall) fresh.push_back(m);
    if (fresh.empty()) {
      stack.pop_back();
      continue;
    }
    const Move m = fresh[draw_below(rng, fresh.size())];
    g.at(y + m.dy, x + m.dx) = kOpen;
    g.at(y + 2 * m.dy, x + 2 * m.dx) = kOpen;
    stack.push_back({y + 2 * m.dy, x + 2 * m.dx});
  }
  return g;
}

// Opens `count` of the closed walls that separate two rooms.
void open_loops(Grid& g, int count, std::mt19937_64& rng) {
  std::vector<int> closed;
  for (int y = 1; y < g.n - 1; ++y)
    for (int x = 1; x < g.n - 1; ++x)
      if ((y + x) % 2 == 1 && g.at(y, x) == kWall) closed.push_back(y * g.n + x);  // between two rooms
  shuffle_in_place(closed, rng);
  for (int i = 0; i < count; ++i) g.cells[closed[i]] = kOpen;
}

int random_room(const Grid& g, std::mt19937_64& rng) {
  const int rooms = g.n / 2, r = int(draw_below(rng, uint64_t(rooms) * rooms));
  return (2 * (r / rooms) + 1) * g.n + 2 * (r % rooms) + 1;
}

std::string instruction_text(const Grid& g) {
  std::string out = kPrefix;
  for (int y = 0; y < g.n; ++y) {
    if (y > 0) out.push_back('/');
    out.append(g.cells, size_t(y) * g.n, g.n);
  }
  return out;
}

// The grid of an instruction, or nullopt when it is not a maze instruction with one S and one G.
std::optional<Grid> parse_instruction(const std::string& instruction) {
  if (instruction.rfind(kPrefix, 0) != 0) return std::nullopt;
  const std::string rows = instruction.substr(kPrefix.size());
  const size_t n = rows.find('/') == std::string::npos ? rows.size() : rows.find('/');
  if (n == 0 || rows.size() != n * n + (n - 1)) return std::nullopt;
  Grid g{int(n), ""};
  for (size_t i = 0; i < rows.size(); ++i) {
    const bool separator = i % (n + 1) == n;
    const char c = rows[i];
    if (separator != (c == '/')) return std::nullopt;
    if (!separator && c != kWall && c != kOpen && c != kStart && c != kGoal) return std::nullopt;
    if (!separator) g.cells.push_back(c);
  }
  if (std::count(g.cells.begin(), g.cells.end(), kStart) != 1 || std::count(g.cells.begin(), g.cells.end(), kGoal) != 1)
    return std::nullopt;
  return g;
}

}  // namespace

MazeTask::MazeTask(Options options) : options_(options) {
  const int n = options.n;
  PONDER_CHECK(n >= kMinSize && n <= kMaxSize && n % 2 == 1, ValueError, "MazeTask: n=", n, " is not odd in ", kMinSize,
               "..", kMaxSize);
  PONDER_CHECK(options.loops >= 0 && options.loops <= max_loops(n), ValueError, "MazeTask: loops=", options.loops,
               " is outside 0..", max_loops(n), " for n=", n);
}

std::unique_ptr<Task> MazeTask::create(TaskOptions& options) {
  Options o;
  o.n = int(options.integer("n", o.n, kMinSize, kMaxSize, 2));
  o.loops = int(options.integer("loops", o.loops, 0, max_loops(o.n)));
  o.unique = options.boolean("unique", o.unique);
  return std::make_unique<MazeTask>(o);
}

std::string MazeTask::name() const {
  return "maze:n=" + std::to_string(options_.n) + ",loops=" + std::to_string(options_.loops) +
         ",unique=" + (options_.unique ? "true" : "false");
}

TaskExample MazeTask::generate(std::mt19937_64& rng) const {
  Grid g = carve_perfect_maze(options_.n, rng);
  open_loops(g, options_.loops, rng);
  // Two neighbouring rooms joined by an opening always have a unique shortest path, so some pair does.
  while (true) {
    const int start = random_room(g, rng), goal = random_room(g, rng);
    if (start == goal) continue;
    const Distances d = breadth_first(g, start);
    if (options_.unique && d.paths[goal] != 1) continue;
    Grid shown = g;
    shown.cells[start] = kStart, shown.cells[goal] = kGoal;
    return {instruction_text(shown), shortest_moves(g, d, goal)};
  }
}

bool MazeTask::verify(const std::string& instruction, const std::string& answer) const {
  const std::optional<Grid> g = parse_instruction(instruction);
  if (!g) return false;
  const int start = g->index_of(kStart), goal = g->index_of(kGoal);
  int y = start / g->n, x = start % g->n;
  for (char c : answer) {
    const auto m = std::find_if(kMoves.begin(), kMoves.end(), [&](const Move& mv) { return mv.name == c; });
    if (m == kMoves.end() || !g->walkable(y + m->dy, x + m->dx)) return false;
    y += m->dy, x += m->dx;
  }
  return y * g->n + x == goal && int(answer.size()) == breadth_first(*g, start).steps[goal];
}

}  // namespace ponder::data
