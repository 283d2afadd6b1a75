#include "data/prepare.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "data/data_test_util.h"
#include "data/dataset.h"
#include "data/inspect.h"
#include "io/errors.h"
#include "support/test_util.h"

namespace ponder::data {
namespace {

namespace fs = std::filesystem;
using ponder::testing::error_message;
using testing::has_substr;
using testing::TempDir;
using testing::tiny_corpus;

std::string parse_error(const std::string& line) {
  return error_message<io::FormatError>([&] { parse_record(line, "in.jsonl:7"); });
}

void write_lines(const fs::path& path, const std::vector<std::string>& lines) {
  std::ofstream out(path, std::ios::binary);
  for (const std::string& line : lines) out << line << "\n";
}

PrepareOptions options_with(void (*change)(PrepareOptions&)) {
  PrepareOptions o;
  change(o);
  return o;
}

// Text as inspect shows it: newlines escaped.
std::string shown(const std::string& text) {
  std::string out;
  for (char c : text) out += c == '\n' ? std::string("\\n") : std::string(1, c);
  return out;
}

size_t files_in(const fs::path& dir) {
  return static_cast<size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

TEST(ParseRecord, ReadsBothKindsAndSkipsBlankLines) {
  std::optional<Record> r = parse_record(R"({"instruction": "2+2?", "response": "4", "condition": "math"})", "x");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r->instruction, "2+2?");
  EXPECT_EQ(r->response, "4");
  EXPECT_EQ(*r->condition, "math");
  r = parse_record(R"({"text": "Once upon a time\n"})", "x");
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(r->instruction.has_value());
  EXPECT_FALSE(r->condition.has_value());
  EXPECT_EQ(r->response, "Once upon a time\n");
  EXPECT_TRUE(parse_record(R"({"instruction": "", "response": ""})", "x")->instruction->empty());
  EXPECT_FALSE(parse_record("", "x").has_value());
  EXPECT_FALSE(parse_record("  \t\r", "x").has_value());
}

TEST(ParseRecord, EveryBadLineIsOneMessageNamingTheLine) {
  const std::pair<std::string, std::string> cases[] = {
      {R"({"instruction": "a", "response": )", "in.jsonl:7: not valid JSON (parse error at line 1, column"},
      {R"([1, 2])", "in.jsonl:7: expected a JSON object, found an array"},
      {R"("just a string")", "expected a JSON object, found a string"},
      {R"({"instruction": "a", "respons": "b"})", "in.jsonl:7: unknown field \"respons\""},
      {R"({"instruction": "a", "response": 4})", "field \"response\" must be a string, found a number"},
      {R"({"instruction": null, "response": "b"})", "field \"instruction\" must be a string, found null"},
      {R"({"instruction": "a"})", "missing field \"response\""},
      {R"({"response": "a"})", "missing field \"instruction\""},
      {R"({})", "missing field \"text\""},
      {R"({"text": "a", "response": "b"})", "either text or instruction + response, not both"},
      {R"({"text": "a", "condition": "has space"})", "condition must be 1 to 64 letters, digits or _-.:/"},
      {R"({"text": "a", "condition": ""})", "condition must be"},
      {"{\"text\": \"caf\xc3\"}", "not valid JSON"},
      {std::string(100, '[') + std::string(100, ']'), "nested more than 32 levels"},
      {"{\"text\": \"a\", \"\x01\xff\": \"b\"}", "not valid JSON"},
      // Found by fuzzing: a number beyond a double escaped as nlohmann's out_of_range.
      {R"({"text": "a", "n": 1e999})", "in.jsonl:7: not valid JSON (number overflow parsing '1e999')"},
  };
  for (const auto& [line, expected] : cases) EXPECT_TRUE(has_substr(parse_error(line), expected)) << line;
  // A long unknown key is cut and escaped, not echoed whole.
  const std::string msg = parse_error("{\"" + std::string(1000, 'k') + "\u00e9\": \"v\"}");
  EXPECT_LT(msg.size(), 300u);
}

// Malformed input of every kind is refused with a FormatError, never a crash or another exception.
TEST(ParseRecord, SurvivesMangledInput) {
  const std::string valid = R"({"instruction": "what is 2+2?", "response": "4", "condition": "math"})";
  uint64_t state = 12345;
  auto next = [&] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(state >> 33);
  };
  for (int trial = 0; trial < 3000; ++trial) {
    std::string line = valid;
    const int edits = 1 + static_cast<int>(next() % 6);
    for (int e = 0; e < edits; ++e) {
      const size_t at = next() % (line.size() + 1);
      switch (next() % 3) {
        case 0: line.insert(line.begin() + at, static_cast<char>(next() & 0xFF)); break;
        case 1: if (at < line.size()) line.erase(at, 1); break;
        default: if (at < line.size()) line[at] = static_cast<char>(next() & 0xFF); break;
      }
    }
    try {
      parse_record(line, "fuzz");
    } catch (const io::FormatError&) {
    }
  }
}

TEST(TokenizeRecord, DocumentedLayout) {
  CharTokenizer tok;
  auto ids = [&](const std::string& s) { return tok.encode(s); };
  auto cat = [](std::initializer_list<std::vector<int32_t>> parts) {
    std::vector<int32_t> out;
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
  };
  Record instruction{"2+2?", "4", "math"};
  Sample s = tokenize_record(instruction, tok);
  EXPECT_EQ(s.instruction, cat({{tok.bos()}, ids("<|math|>"), {tok.inst()}, ids("2+2?"), {tok.resp()}}));
  EXPECT_EQ(s.response, cat({ids("4"), {tok.eos()}}));

  Record text{std::nullopt, "hello", std::nullopt};
  s = tokenize_record(text, tok);
  EXPECT_TRUE(s.instruction.empty());
  EXPECT_EQ(s.response, cat({{tok.bos()}, ids("hello"), {tok.eos()}}));

  s = tokenize_record(instruction, tok, false, false);
  EXPECT_EQ(s.instruction, cat({ids("<|math|>"), {tok.inst()}, ids("2+2?"), {tok.resp()}}));
  EXPECT_EQ(s.response, ids("4"));
}

TEST(Prepare, CharTokenizerShardsReadBackAsTokenized) {
  TempDir dir;
  std::vector<std::string> lines;
  std::vector<Record> records;
  for (int i = 0; i < 40; ++i) {
    const std::string q = std::string("q").append(std::to_string(i));
    const std::string a = std::string("answer ").append(std::to_string(i * i));
    const std::string condition = std::string("c").append(std::to_string(i % 2));
    if (i % 4 == 3) {
      lines.push_back(R"({"text": ")" + a + R"("})");
      records.push_back({std::nullopt, a, std::nullopt});
    } else {
      lines.push_back(R"({"instruction": ")" + q + R"(", "response": ")" + a + R"(", "condition": ")" + condition +
                      R"("})");
      records.push_back({q, a, condition});
    }
    if (i % 10 == 0) lines.push_back("");
  }
  write_lines(dir / "in.jsonl", lines);
  CharTokenizer tok;
  const PrepareSummary summary = prepare(dir / "in.jsonl", dir / "out", tok,
                                          options_with([](PrepareOptions& o) { o.shard_tokens = 200; }));
  EXPECT_EQ(summary.instruction_samples, 30);
  EXPECT_EQ(summary.text_samples, 10);
  EXPECT_EQ(summary.lines, 44);
  EXPECT_GT(summary.shards.size(), 3u);
  EXPECT_EQ(summary.tokenizer_id, tok.id());
  EXPECT_TRUE(has_substr(summary.str(), "prepared 40 samples (30 instruction, 10 text) from 44 lines"));
  EXPECT_TRUE(fs::exists(dir / "out" / "char_tokenizer.json"));

  Dataset data({dir / "out"});
  ASSERT_EQ(data.size(), 40);
  EXPECT_EQ(data.num_tokens(), summary.tokens);
  EXPECT_EQ(data.tokenizer_id(), tok.id());
  for (const Shard& shard : data.shards()) EXPECT_LE(shard.num_tokens(), 200);
  for (int64_t i = 0; i < data.size(); ++i) {
    const Sample expected = tokenize_record(records[i], tok);
    EXPECT_EQ(data.get(i).instruction, expected.instruction) << i;
    EXPECT_EQ(data.get(i).response, expected.response) << i;
  }
  EXPECT_EQ(load_tokenizer(dir / "out")->id(), tok.id());
}

TEST(Prepare, TrainedTokenizerThenInspect) {
  TempDir dir;
  std::vector<std::string> lines;
  const std::vector<std::string> corpus = tiny_corpus(300);
  for (size_t i = 0; i + 1 < corpus.size(); i += 2) {
    if (i % 10 == 0) lines.push_back(nlohmann::json{{"text", corpus[i] + " " + corpus[i + 1]}}.dump());
    else
      lines.push_back(
          nlohmann::json{{"instruction", corpus[i]}, {"response", corpus[i + 1]}, {"condition", "easy"}}.dump());
  }
  write_lines(dir / "in.jsonl", lines);
  const PrepareSummary summary = prepare(dir / "in.jsonl", dir / "out", options_with([](PrepareOptions& o) { o.vocab_size = 64; }));
  EXPECT_EQ(summary.instruction_samples + summary.text_samples, 150);
  EXPECT_EQ(summary.shards.size(), 1u);
  EXPECT_LE(summary.vocab_size, 64);
  ASSERT_TRUE(fs::exists(dir / "out" / "tokenizer.model"));
  std::unique_ptr<Tokenizer> tok = load_tokenizer(dir / "out");
  EXPECT_EQ(tok->id(), summary.tokenizer_id);
  EXPECT_EQ(tok->encode_condition("easy").size(), 1u);

  const std::string report = inspect(summary.shards[0], tok.get(), {.samples = 2});
  for (const std::string& part :
       {std::string("samples      150 (120 instruction, 30 plain text)"), "tokens       " + std::to_string(summary.tokens),
        "vocab size   " + std::to_string(summary.vocab_size), "tokenizer    " + summary.tokenizer_id,
        std::string("instruction lengths (tokens): min 0"), std::string("response lengths (tokens): min"),
        std::string("sample 1\n  instruction: <bos><|easy|><inst>") + shown(corpus[2]) + "<resp>",
        "  response:    " + shown(corpus[3]) + "<eos>"})
    EXPECT_TRUE(has_substr(report, part));
  EXPECT_TRUE(has_substr(report, "\n              0 | ")) << "plain-text samples have empty instructions";
  // Without a tokenizer: numbers only. With another tokenizer: refused.
  EXPECT_EQ(inspect(summary.shards[0]).find("sample 0"), std::string::npos);
  CharTokenizer other;
  EXPECT_THROW(inspect(summary.shards[0], &other), ValueError);
}

TEST(Prepare, BadLineFailsTheRunAndLeavesNothing) {
  TempDir dir;
  write_lines(dir / "in.jsonl", {R"({"text": "a b c"})", R"({"text": "d e f"})", "",
                                 R"({"instruction": "x", "response": 5})"});
  EXPECT_TRUE(has_substr(error_message<io::FormatError>([&] { prepare(dir / "in.jsonl", dir / "out", CharTokenizer(), {}); }),
                         "in.jsonl:4: field \"response\" must be a string"));
  EXPECT_FALSE(fs::exists(dir / "out"));
  EXPECT_THROW(prepare(dir / "in.jsonl", dir / "out", options_with([](PrepareOptions& o) { o.vocab_size = 64; })), io::FormatError);
  EXPECT_FALSE(fs::exists(dir / "out"));

  // Text the tokenizer cannot encode is a FormatError naming the line, too.
  write_lines(dir / "in.jsonl", {R"({"text": "plain"})", R"({"text": "tab\there"})"});
  EXPECT_TRUE(has_substr(error_message<io::FormatError>([&] { prepare(dir / "in.jsonl", dir / "out", CharTokenizer(), {}); }),
                         "in.jsonl:2: CharTokenizer: byte 0x09 at offset 3"));
  EXPECT_FALSE(fs::exists(dir / "out"));
}

TEST(Prepare, RefusesToOverwriteOrToGuess) {
  TempDir dir;
  write_lines(dir / "in.jsonl", {R"({"text": "a b c"})"});
  fs::create_directories(dir / "out");
  std::ofstream(dir / "out" / "keep.txt") << "mine";
  EXPECT_TRUE(has_substr(error_message<io::IoError>([&] { prepare(dir / "in.jsonl", dir / "out", CharTokenizer(), {}); }),
                         "is not empty"));
  EXPECT_EQ(files_in(dir / "out"), 1u);
  EXPECT_THROW(prepare(dir / "in.jsonl", dir / "new", PrepareOptions{}), ValueError);
  EXPECT_THROW(prepare(dir / "missing.jsonl", dir / "new", CharTokenizer(), {}), io::IoError);
  write_lines(dir / "blank.jsonl", {"", "  "});
  EXPECT_TRUE(has_substr(error_message<io::FormatError>([&] { prepare(dir / "blank.jsonl", dir / "new", CharTokenizer(), {}); }),
                         "holds no records"));
  write_lines(dir / "empty_response.jsonl", {R"({"instruction": "q", "response": ""})"});
  EXPECT_TRUE(has_substr(error_message<io::FormatError>([&] {
                           prepare(dir / "empty_response.jsonl", dir / "new", CharTokenizer(), options_with([](PrepareOptions& o) { o.add_bos = o.add_eos = false; }));
                         }),
                         "empty_response.jsonl:1: nothing to predict"));
}

}  // namespace
}  // namespace ponder::data
