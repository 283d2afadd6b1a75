#include "data/tasks/maze.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <tuple>

#include "tensor/error.h"

namespace ponder::data {
namespace {

const std::string kPrefix = "maze:";

// The grid of an instruction as rows, parsed independently of the task.
std::vector<std::string> rows_of(const std::string& instruction) {
  std::vector<std::string> rows;
  std::string rest = instruction.substr(kPrefix.size());
  for (size_t slash; (slash = rest.find('/')) != std::string::npos; rest = rest.substr(slash + 1))
    rows.push_back(rest.substr(0, slash));
  rows.push_back(rest);
  return rows;
}

struct Point {
  int y, x;
  auto operator<=>(const Point&) const = default;
};

Point find(const std::vector<std::string>& rows, char c) {
  for (int y = 0; y < int(rows.size()); ++y)
    if (size_t x = rows[y].find(c); x != std::string::npos) return {y, int(x)};
  return {-1, -1};
}

std::vector<Point> open_neighbours(const std::vector<std::string>& rows, Point p) {
  std::vector<Point> out;
  for (Point d : {Point{-1, 0}, Point{1, 0}, Point{0, -1}, Point{0, 1}}) {
    const Point q{p.y + d.y, p.x + d.x};
    if (q.y >= 0 && q.x >= 0 && q.y < int(rows.size()) && q.x < int(rows[q.y].size()) && rows[q.y][q.x] != '#')
      out.push_back(q);
  }
  return out;
}

// Distance from S and the number of distinct shortest paths from S, for every reachable cell.
struct PathCounts {
  std::map<Point, int> distance;
  std::map<Point, long> paths;
};

PathCounts count_paths(const std::vector<std::string>& rows) {
  PathCounts out;
  std::vector<Point> layer = {find(rows, 'S')};
  out.distance[layer[0]] = 0, out.paths[layer[0]] = 1;
  for (int d = 1; !layer.empty(); ++d) {
    std::vector<Point> next;
    for (Point p : layer)
      for (Point q : open_neighbours(rows, p)) {
        if (!out.distance.count(q)) out.distance[q] = d, next.push_back(q);
        if (out.distance[q] == d) out.paths[q] += out.paths[p];
      }
    layer = next;
  }
  return out;
}

TEST(Maze, ConstructorRejectsImpossibleOptions) {
  EXPECT_THROW(MazeTask({.n = 10}), ValueError);
  EXPECT_THROW(MazeTask({.n = 41}), ValueError);
  EXPECT_THROW(MazeTask({.n = 9, .loops = 10}), ValueError);  // a 4x4-room maze keeps only 9 walls closed
  EXPECT_THROW(MazeTask({.n = 9, .loops = -1}), ValueError);
}

TEST(Maze, GridLayout) {
  for (int n : {5, 9, 21}) {
    const MazeTask task({.n = n, .loops = 0, .unique = true});
    const std::vector<std::string> rows = rows_of(task_example(task, 1, Split::train, 0).instruction);
    ASSERT_EQ(int(rows.size()), n);
    for (int y = 0; y < n; ++y) {
      ASSERT_EQ(int(rows[y].size()), n);
      for (int x = 0; x < n; ++x) {
        const char c = rows[y][x];
        EXPECT_NE(std::string("#.SG").find(c), std::string::npos);
        const bool border = y == 0 || x == 0 || y == n - 1 || x == n - 1;
        if (border || (y % 2 == 0 && x % 2 == 0)) {
          EXPECT_EQ(c, '#') << "border or post " << y << "," << x;
        } else if (y % 2 == 1 && x % 2 == 1) {
          EXPECT_NE(c, '#') << "room " << y << "," << x;
        }
      }
    }
  }
}

// Open cells minus the links between them: 1 for a tree (a perfect maze), and each loop adds a link.
int open_cells_minus_links(const std::vector<std::string>& rows) {
  int cells = 0, links = 0;
  for (int y = 0; y < int(rows.size()); ++y)
    for (int x = 0; x < int(rows[y].size()); ++x) {
      if (rows[y][x] == '#') continue;
      ++cells;
      links += int(open_neighbours(rows, {y, x}).size());
    }
  return cells - links / 2;
}

TEST(Maze, PerfectMazesAreTreesAndLoopsOpenExactlyKWalls) {
  for (int loops : {0, 3, 9}) {
    const MazeTask task({.n = 9, .loops = loops, .unique = false});
    for (uint64_t i = 0; i < 5; ++i) {
      const std::vector<std::string> rows = rows_of(task_example(task, 2, Split::train, i).instruction);
      EXPECT_EQ(count_paths(rows).distance.size(), size_t(16 + 15 + loops)) << "every open cell is reachable";
      EXPECT_EQ(open_cells_minus_links(rows), 1 - loops);
    }
  }
}

TEST(Maze, ResponseIsAShortestPath) {
  for (const MazeTask::Options& o : {MazeTask::Options{.n = 11, .loops = 0}, MazeTask::Options{.n = 15, .loops = 20, .unique = false}}) {
    const MazeTask task(o);
    for (uint64_t i = 0; i < 10; ++i) {
      const TaskExample e = task_example(task, 3, Split::train, i);
      const std::vector<std::string> rows = rows_of(e.instruction);
      Point p = find(rows, 'S');
      for (char m : e.response) {
        p.y += m == 'D' ? 1 : (m == 'U' ? -1 : 0);
        p.x += m == 'R' ? 1 : (m == 'L' ? -1 : 0);
        ASSERT_NE(rows[p.y][p.x], '#') << e.instruction << " -> " << e.response;
      }
      EXPECT_EQ(p, find(rows, 'G'));
      EXPECT_EQ(int(e.response.size()), count_paths(rows).distance.at(find(rows, 'G')));
    }
  }
}

TEST(Maze, UniqueOptionKeepsOnlyUniqueShortestPaths) {
  auto non_unique = [](const MazeTask& task) {
    int count = 0;
    for (uint64_t i = 0; i < 40; ++i) {
      const std::vector<std::string> rows = rows_of(task_example(task, 4, Split::train, i).instruction);
      count += count_paths(rows).paths.at(find(rows, 'G')) > 1;
    }
    return count;
  };
  EXPECT_GT(non_unique(MazeTask({.n = 9, .loops = 9, .unique = false})), 0);  // so the option has work to do
  EXPECT_EQ(non_unique(MazeTask({.n = 9, .loops = 9, .unique = true})), 0);
  EXPECT_EQ(non_unique(MazeTask({.n = 15, .loops = 8, .unique = true})), 0);
}

TEST(Maze, CorruptedAnswersAreRejected) {
  const MazeTask task({.n = 11, .loops = 0});
  const TaskExample e = task_example(task, 5, Split::train, 1);
  ASSERT_GE(e.response.size(), 2u);
  ASSERT_TRUE(task.verify(e.instruction, e.response));
  const std::string& r = e.response;
  const char back = r[0] == 'U' ? 'D' : r[0] == 'D' ? 'U' : r[0] == 'L' ? 'R' : 'L';
  EXPECT_FALSE(task.verify(e.instruction, r.substr(0, r.size() - 1)));       // stops short
  EXPECT_FALSE(task.verify(e.instruction, r.substr(0, 1) + back + r));       // reaches G the long way
  EXPECT_FALSE(task.verify(e.instruction, ""));
  EXPECT_FALSE(task.verify(e.instruction, r + "x"));
  const std::vector<std::string> rows = rows_of(e.instruction);
  const Point s = find(rows, 'S');
  for (auto [move, y, x] : {std::tuple{'U', s.y - 1, s.x}, {'D', s.y + 1, s.x}, {'L', s.y, s.x - 1}, {'R', s.y, s.x + 1}})
    if (rows[y][x] == '#') {
      EXPECT_FALSE(task.verify(e.instruction, move + r.substr(1))) << "walks into a wall";
    }
  std::string lower = r;
  lower[0] = char(std::tolower(lower[0]));
  EXPECT_FALSE(task.verify(e.instruction, lower));
  EXPECT_FALSE(task.verify("maze:#####/#S.G#", r));                          // not a square grid
}

TEST(Maze, AnyShortestPathIsAccepted) {
  // An open 5x5 maze: two shortest paths between opposite rooms, around the middle post.
  const std::string instruction = "maze:#####/#S..#/#.#.#/#..G#/#####";
  const MazeTask task({.n = 5, .loops = 1, .unique = false});
  EXPECT_TRUE(task.verify(instruction, "RRDD"));
  EXPECT_TRUE(task.verify(instruction, "DDRR"));
  EXPECT_FALSE(task.verify(instruction, "RDRD"));  // through the post
  EXPECT_FALSE(task.verify(instruction, "RRDDLR"));
}

}  // namespace
}  // namespace ponder::data
