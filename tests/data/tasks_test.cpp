// Task specs, the registry, and what every task shares: determinism, the reference answer
// verifying, character-tokenizer coverage and disjoint train/test splits.
#include "data/tasks/task.h"

#include <gtest/gtest.h>

#include <cctype>
#include <set>
#include <unordered_set>

#include "data/data_test_util.h"
#include "data/tasks/task_options.h"
#include "data/tokenizer.h"
#include "support/test_util.h"

namespace ponder::data {
namespace {

using ponder::testing::error_message;
using testing::has_substr;

TEST(TaskSpec, ParsesNameAndOptionsInOrder) {
  const TaskSpec spec = parse_task_spec("maze:n=11,loops=2");
  EXPECT_EQ(spec.name, "maze");
  ASSERT_EQ(spec.options.size(), 2u);
  EXPECT_EQ(spec.options[0], (std::pair<std::string, std::string>{"n", "11"}));
  EXPECT_EQ(spec.options[1], (std::pair<std::string, std::string>{"loops", "2"}));
  EXPECT_TRUE(parse_task_spec("sort").options.empty());
}

TEST(TaskSpec, MalformedSpecsAreValueErrors) {
  EXPECT_TRUE(has_substr(error_message<ValueError>([] { parse_task_spec(""); }), "task name is empty"));
  EXPECT_TRUE(has_substr(error_message<ValueError>([] { parse_task_spec(":n=3"); }), "task name is empty"));
  EXPECT_TRUE(has_substr(error_message<ValueError>([] { parse_task_spec("maze:"); }), "option \"\" is not key=value"));
  EXPECT_TRUE(has_substr(error_message<ValueError>([] { parse_task_spec("maze:n"); }), "option \"n\" is not key=value"));
  EXPECT_TRUE(has_substr(error_message<ValueError>([] { parse_task_spec("maze:n="); }), "\"n=\" is not key=value"));
  EXPECT_TRUE(has_substr(error_message<ValueError>([] { parse_task_spec("maze:=5"); }), "\"=5\" is not key=value"));
  EXPECT_TRUE(has_substr(error_message<ValueError>([] { parse_task_spec("maze:n=5,"); }), "option \"\" is not"));
  EXPECT_TRUE(has_substr(error_message<ValueError>([] { parse_task_spec("maze:n=5,n=7"); }),
                         "task \"maze\": option \"n\" is given twice"));
}

TEST(MakeTask, NamesAreCanonicalFullSpecs) {
  EXPECT_EQ(make_task("sort")->name(), "sort");
  EXPECT_EQ(make_task("sudoku")->name(), "sudoku:givens=36");
  EXPECT_EQ(make_task("sudoku:givens=30")->name(), "sudoku:givens=30");
  EXPECT_EQ(make_task("maze")->name(), "maze:n=9,loops=0,unique=true");
  EXPECT_EQ(make_task("maze:loops=2,n=11")->name(), "maze:n=11,loops=2,unique=true");
  EXPECT_EQ(make_task("maze:unique=false")->name(), "maze:n=9,loops=0,unique=false");
  EXPECT_EQ(make_task("arithmetic")->name(), "arithmetic:op=add,digits=3");
  EXPECT_EQ(make_task("arithmetic:op=mul,digits=4")->name(), "arithmetic:op=mul,digits=4");
  EXPECT_EQ(make_task("arithmetic:op=chain")->name(), "arithmetic:op=chain,digits=3,terms=3");
  EXPECT_EQ(make_task("arithmetic:terms=5,op=chain,digits=1")->name(), "arithmetic:op=chain,digits=1,terms=5");
  for (const std::string& name : task_names()) {
    const std::string canonical = make_task(name)->name();
    EXPECT_EQ(make_task(canonical)->name(), canonical);
  }
}

TEST(MakeTask, ListsEveryTask) {
  EXPECT_EQ(task_names(), (std::vector<std::string>{"sort", "reverse", "dedup", "sudoku", "maze", "arithmetic"}));
}

TEST(MakeTask, BadSpecsNameTaskKeyAndAllowedValues) {
  auto message = [](const std::string& spec) { return error_message<ValueError>([&] { make_task(spec); }); };
  EXPECT_TRUE(has_substr(message("sudok"), "unknown task \"sudok\" (known tasks: sort, reverse, dedup, sudoku, maze, arithmetic)"));
  EXPECT_TRUE(has_substr(message("sudoku:givens=21"), "task \"sudoku\": givens=21 is invalid (allowed: 22..80)"));
  EXPECT_TRUE(has_substr(message("sudoku:givens=81"), "givens=81 is invalid (allowed: 22..80)"));
  EXPECT_TRUE(has_substr(message("sudoku:givens=3x"), "givens=3x is invalid"));
  EXPECT_TRUE(has_substr(message("sudoku:givens=+30"), "givens=+30 is invalid"));
  EXPECT_TRUE(has_substr(message("sudoku:level=3"), "task \"sudoku\": unknown option \"level\" (allowed: givens)"));
  EXPECT_TRUE(has_substr(message("maze:n=10"), "task \"maze\": n=10 is invalid (allowed: 5, 7, ..., 39)"));
  EXPECT_TRUE(has_substr(message("maze:n=41"), "n=41 is invalid (allowed: 5, 7, ..., 39)"));
  EXPECT_TRUE(has_substr(message("maze:n=9,loops=10"), "task \"maze\": loops=10 is invalid (allowed: 0..9)"));
  EXPECT_TRUE(has_substr(message("maze:n=5,loops=2"), "loops=2 is invalid (allowed: 0..1)"));
  EXPECT_TRUE(has_substr(message("maze:unique=yes"), "unique=yes is invalid (allowed: true, false)"));
  EXPECT_TRUE(has_substr(message("maze:size=9"), "unknown option \"size\" (allowed: n, loops, unique)"));
  EXPECT_TRUE(has_substr(message("arithmetic:op=div"), "task \"arithmetic\": op=div is invalid (allowed: add, mul, chain)"));
  EXPECT_TRUE(has_substr(message("arithmetic:digits=0"), "digits=0 is invalid (allowed: 1..12)"));
  EXPECT_TRUE(has_substr(message("arithmetic:digits=13"), "digits=13 is invalid (allowed: 1..12)"));
  EXPECT_TRUE(has_substr(message("arithmetic:op=chain,terms=11"), "terms=11 is invalid (allowed: 2..10)"));
  EXPECT_TRUE(has_substr(message("arithmetic:op=add,terms=3"), "terms=3 is invalid (allowed: only with op=chain)"));
  EXPECT_TRUE(has_substr(message("sort:n=3"), "task \"sort\": unknown option \"n\" (allowed: none)"));
}

// One spec per task family and knob worth covering; each example must be cheap to generate.
const std::vector<std::string> kSpecs = {
    "sort", "reverse", "dedup", "sudoku", "sudoku:givens=70", "maze", "maze:n=15,loops=6",
    "maze:n=7,loops=2,unique=false", "arithmetic", "arithmetic:op=mul,digits=12", "arithmetic:op=chain,digits=2,terms=6"};

class EveryTask : public ::testing::TestWithParam<std::string> {};
INSTANTIATE_TEST_SUITE_P(Tasks, EveryTask, ::testing::ValuesIn(kSpecs), [](const auto& info) {
  std::string name;
  for (char c : info.param) name.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '_');
  return name;
});

TEST_P(EveryTask, ExamplesAreAFunctionOfSeedSplitAndIndex) {
  const auto a = make_task(GetParam()), b = make_task(GetParam());
  for (uint64_t i = 0; i < 4; ++i) {
    const TaskExample x = task_example(*a, 7, Split::train, i), y = task_example(*b, 7, Split::train, i);
    EXPECT_EQ(x.instruction, y.instruction);
    EXPECT_EQ(x.response, y.response);
  }
  std::set<std::string> seen;  // other seeds, splits and indices give other examples (almost always)
  for (uint64_t seed : {1, 2})
    for (Split split : {Split::train, Split::test})
      for (uint64_t i = 0; i < 3; ++i) seen.insert(task_example(*a, seed, split, i).instruction);
  EXPECT_GE(seen.size(), 3u);
}

TEST_P(EveryTask, ReferenceAnswersVerifyAndFitTheCharacterTokenizer) {
  const auto task = make_task(GetParam());
  const CharTokenizer tok;
  for (uint64_t i = 0; i < 8; ++i) {
    const TaskExample e = task_example(*task, 3, Split::train, i);
    EXPECT_TRUE(task->verify(e.instruction, e.response)) << e.instruction << " -> " << e.response;
    EXPECT_EQ(tok.decode(tok.encode(e.instruction)), e.instruction);
    EXPECT_EQ(tok.decode(tok.encode(e.response)), e.response);
  }
}

TEST_P(EveryTask, CutOrExtendedReferencesAreRejected) {
  const auto task = make_task(GetParam());
  for (uint64_t i = 0; i < 8; ++i) {
    const TaskExample e = task_example(*task, 3, Split::train, i);
    EXPECT_FALSE(task->verify(e.instruction, e.response.substr(0, e.response.size() - 1))) << e.instruction;
    EXPECT_FALSE(task->verify(e.instruction, e.response + "9")) << e.instruction;
    EXPECT_FALSE(task->verify(e.instruction, "")) << e.instruction;
  }
}

TEST(ListTasks, VerifiersCheckTheWholeList) {
  const auto sort = make_task("sort"), reverse = make_task("reverse"), dedup = make_task("dedup");
  EXPECT_TRUE(sort->verify("sort:31415", "11345"));
  EXPECT_FALSE(sort->verify("sort:31415", "11354"));
  EXPECT_FALSE(sort->verify("sort:31415", "1345"));     // a duplicate lost
  EXPECT_FALSE(sort->verify("reverse:31415", "11345"));  // another task's instruction
  EXPECT_TRUE(reverse->verify("reverse:31415", "51413"));
  EXPECT_FALSE(reverse->verify("reverse:31415", "31415"));
  EXPECT_TRUE(dedup->verify("dedup:31415", "3145"));
  EXPECT_FALSE(dedup->verify("dedup:31415", "1345"));   // first occurrences, in order
  EXPECT_FALSE(dedup->verify("dedup:31415", "31415"));
}

TEST_P(EveryTask, TrainingStreamNeverYieldsATestExample) {
  auto task = std::shared_ptr<const Task>(make_task(GetParam()));
  TaskStream stream(task, 11, 64);
  std::unordered_set<std::string> test;
  for (const TaskExample& e : stream.test()) test.insert(e.instruction);
  for (int i = 0; i < 200; ++i) {
    EXPECT_FALSE(test.count(stream.peek_train().instruction)) << "train example " << i << " is a test example";
    stream.pop_train();
  }
}

TEST(TaskStream, SkipsTestExamplesOfASmallTask) {
  // One-digit additions: 100 instructions, so 64 test draws make many training draws collide.
  auto task = std::shared_ptr<const Task>(make_task("arithmetic:digits=1"));
  TaskStream stream(task, 5, 64);
  std::unordered_set<std::string> test;
  for (const TaskExample& e : stream.test()) test.insert(e.instruction);
  int collisions = 0;
  for (uint64_t i = 0; i < 200; ++i) collisions += test.count(task_example(*task, 5, Split::train, i).instruction);
  ASSERT_GT(collisions, 0);  // the raw training split does hit the test set
  for (int i = 0; i < 200; ++i) {
    EXPECT_FALSE(test.count(stream.peek_train().instruction));
    stream.pop_train();
  }
}

TEST(TaskStream, ATestSetCoveringTheTaskIsAValueError) {
  auto task = std::shared_ptr<const Task>(make_task("maze:n=5,loops=1"));  // a handful of distinct mazes
  TaskStream stream(task, 1, 400);
  EXPECT_TRUE(has_substr(error_message<ValueError>([&] { stream.peek_train(); }), "test examples cover"));
}

}  // namespace
}  // namespace ponder::data
