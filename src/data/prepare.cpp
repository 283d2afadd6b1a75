#include "data/prepare.h"

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "data/shard.h"
#include "io/errors.h"

namespace ponder::data {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using io::FormatError;

constexpr size_t kMaxLineBytes = size_t(64) << 20;
constexpr int kMaxNesting = 32;  // records are flat; deeper input is refused before parsing
constexpr size_t kMaxConditionBytes = 64;

// Nesting depth of the JSON text, counting brackets outside strings.
int nesting_depth(std::string_view line) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : line) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest > kMaxNesting) return deepest;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

// The parser's message without its "[json.exception...] " tag, with unprintable bytes shown as '?'.
std::string json_error(const json::exception& e) {
  std::string what = e.what();
  const size_t tag_end = what.find("] ");
  if (tag_end != std::string::npos) what = what.substr(tag_end + 2);
  for (char& c : what)
    if (static_cast<unsigned char>(c) < 32 || static_cast<unsigned char>(c) > 126) c = '?';
  return what;
}

bool valid_condition(const std::string& c) {
  if (c.empty() || c.size() > kMaxConditionBytes) return false;
  for (unsigned char ch : c)
    if (!std::isalnum(ch) && std::string_view("_-.:/").find(static_cast<char>(ch)) == std::string_view::npos)
      return false;
  return true;
}

// A field name as a JSON string literal (ASCII, escaped), cut after 64 bytes.
std::string quoted(const std::string& key) {
  const std::string shown = json(key.substr(0, 64)).dump(-1, ' ', true, json::error_handler_t::replace);
  return key.size() > 64 ? shown + "..." : shown;
}

const char* json_type(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: return "a number";
    case json::value_t::object: return "an object";
    case json::value_t::array: return "an array";
    default: return "a string";
  }
}

// Reads a JSONL file record by record, counting lines.
class JsonlReader {
 public:
  explicit JsonlReader(const fs::path& path) : path_(path), in_(path, std::ios::binary) {
    PONDER_CHECK(in_, io::IoError, path.string(), ": cannot be read (", std::strerror(errno), ")");
  }

  // The next record; false at the end of the file.
  bool next(Record& record) {
    std::string line;
    while (std::getline(in_, line)) {
      ++lines_;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (std::optional<Record> r = parse_record(line, where())) {
        record = std::move(*r);
        return true;
      }
    }
    PONDER_CHECK(in_.eof(), io::IoError, path_.string(), ": read failed after line ", lines_);
    return false;
  }

  std::string where() const { return path_.string() + ":" + std::to_string(lines_); }
  int64_t lines() const { return lines_; }

 private:
  fs::path path_;
  std::ifstream in_;
  int64_t lines_ = 0;
};

// Files a prepare run creates; removed unless the run completes.
class CreatedFiles {
 public:
  ~CreatedFiles() {
    if (keep_) return;
    std::error_code ec;
    for (const fs::path& p : files_) fs::remove(p, ec);
    if (!dir_.empty()) fs::remove(dir_, ec);  // only succeeds when empty
  }
  void add(const fs::path& p) { files_.push_back(p); }
  void created_dir(const fs::path& d) { dir_ = d; }
  void keep() { keep_ = true; }

 private:
  std::vector<fs::path> files_;
  fs::path dir_;
  bool keep_ = false;
};

void use_empty_dir(const fs::path& dir, CreatedFiles& created) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    fs::create_directories(dir, ec);
    PONDER_CHECK(!ec, io::IoError, dir.string(), ": cannot create the directory (", ec.message(), ")");
    created.created_dir(dir);
    return;
  }
  PONDER_CHECK(fs::is_directory(dir, ec), io::IoError, dir.string(), ": exists and is not a directory");
  PONDER_CHECK(fs::is_empty(dir, ec), io::IoError, dir.string(),
               ": is not empty; prepare writes into a new or empty directory and overwrites nothing");
}

void write_shards(const fs::path& jsonl, const fs::path& out_dir, const Tokenizer& tokenizer,
                  const PrepareOptions& options, CreatedFiles& created, PrepareSummary& summary) {
  const ShardMeta meta{tokenizer.vocab_size(), tokenizer.id()};
  JsonlReader reader(jsonl);
  ShardSetWriter shards(out_dir, meta, options.shard_tokens);
  Record record;
  while (reader.next(record)) {
    Sample sample;
    try {
      sample = tokenize_record(record, tokenizer, options.add_bos, options.add_eos);
    } catch (const ValueError& e) {
      fail<FormatError>(reader.where(), ": ", e.what());
    }
    PONDER_CHECK(!sample.response.empty() && sample.packed_length() >= 1, FormatError, reader.where(),
                 ": nothing to predict (an empty response, or a one-token text, with bos/eos off)");
    shards.add(sample);
    ++(record.instruction ? summary.instruction_samples : summary.text_samples);
  }
  PONDER_CHECK(shards.tokens() > 0, FormatError, jsonl.string(), ": holds no records");
  summary.shards = shards.close();
  for (const fs::path& shard : summary.shards) created.add(shard);
  summary.lines = reader.lines();
  summary.tokens = shards.tokens();
  summary.vocab_size = meta.vocab_size;
  summary.tokenizer_id = meta.tokenizer_id;
}

}  // namespace

std::optional<Record> parse_record(std::string_view line, const std::string& where) {
  if (line.find_first_not_of(" \t\r\n") == std::string_view::npos) return std::nullopt;
  PONDER_CHECK(line.size() <= kMaxLineBytes, FormatError, where, ": the line is longer than ", kMaxLineBytes >> 20,
               " MiB");
  PONDER_CHECK(nesting_depth(line) <= kMaxNesting, FormatError, where, ": JSON nested more than ", kMaxNesting,
               " levels deep");
  json value;
  try {
    value = json::parse(line);
  } catch (const json::exception& e) {  // parse errors, and numbers beyond a double (out_of_range)
    fail<FormatError>(where, ": not valid JSON (", json_error(e), ")");
  }
  PONDER_CHECK(value.is_object(), FormatError, where, ": expected a JSON object, found ", json_type(value));
  Record record;
  bool has_instruction = false, has_response = false, has_text = false;
  for (const auto& [key, v] : value.items()) {
    const bool known = key == "instruction" || key == "response" || key == "text" || key == "condition";
    PONDER_CHECK(known, FormatError, where, ": unknown field ", quoted(key),
                 " (expected instruction + response, or text; condition optional)");
    PONDER_CHECK(v.is_string(), FormatError, where, ": field \"", key, "\" must be a string, found ", json_type(v));
    std::string s = v.get<std::string>();
    if (key == "instruction") {
      record.instruction = std::move(s);
      has_instruction = true;
    } else if (key == "response") {
      record.response = std::move(s);
      has_response = true;
    } else if (key == "text") {
      record.response = std::move(s);
      has_text = true;
    } else {
      PONDER_CHECK(valid_condition(s), FormatError, where, ": condition must be 1 to ", kMaxConditionBytes,
                   " letters, digits or _-.:/");
      record.condition = std::move(s);
    }
  }
  PONDER_CHECK(!(has_text && (has_instruction || has_response)), FormatError, where,
               ": a record has either text or instruction + response, not both");
  PONDER_CHECK(has_text || (has_instruction && has_response), FormatError, where, ": missing field \"",
               has_instruction ? "response" : has_response ? "instruction" : "text",
               "\" (expected instruction + response, or text)");
  return record;
}

Sample tokenize_record(const Record& record, const Tokenizer& tokenizer, bool add_bos, bool add_eos) {
  auto append = [](std::vector<int32_t>& to, const std::vector<int32_t>& ids) {
    to.insert(to.end(), ids.begin(), ids.end());
  };
  std::vector<int32_t> head;  // [bos] cond
  if (add_bos) head.push_back(tokenizer.bos());
  if (record.condition) append(head, tokenizer.encode_condition(*record.condition));
  Sample s;
  if (record.instruction) {
    s.instruction = head;
    s.instruction.push_back(tokenizer.inst());
    append(s.instruction, tokenizer.encode(*record.instruction));
    s.instruction.push_back(tokenizer.resp());
  } else {
    s.response = head;
  }
  append(s.response, tokenizer.encode(record.response));
  if (add_eos) s.response.push_back(tokenizer.eos());
  return s;
}

std::string PrepareSummary::str() const {
  std::ostringstream os;
  os << "prepared " << instruction_samples + text_samples << " samples (" << instruction_samples << " instruction, "
     << text_samples << " text) from " << lines << " lines: " << tokens << " tokens in " << shards.size()
     << (shards.size() == 1 ? " shard" : " shards") << "; vocab " << vocab_size << ", tokenizer " << tokenizer_id;
  return os.str();
}

PrepareSummary prepare(const fs::path& jsonl, const fs::path& out_dir, const Tokenizer& tokenizer,
                       const PrepareOptions& options) {
  CreatedFiles created;
  use_empty_dir(out_dir, created);
  PrepareSummary summary;
  write_shards(jsonl, out_dir, tokenizer, options, created, summary);
  tokenizer.save(out_dir);
  created.keep();
  return summary;
}

PrepareSummary prepare(const fs::path& jsonl, const fs::path& out_dir, const PrepareOptions& options) {
  if (!options.tokenizer.empty()) return prepare(jsonl, out_dir, *load_tokenizer(options.tokenizer), options);
  PONDER_CHECK(options.vocab_size > 0, ValueError,
               "prepare: give a tokenizer, or a vocab_size for the one to train");
  CreatedFiles created;
  use_empty_dir(out_dir, created);
  // First pass: every line valid, and the conditions to learn as symbols.
  std::set<std::string> conditions;
  {
    JsonlReader reader(jsonl);
    Record record;
    while (reader.next(record))
      if (record.condition) conditions.insert(*record.condition);
  }
  // Second pass: the texts, one field at a time.
  JsonlReader reader(jsonl);
  Record record;
  int field = 2;  // 0: instruction, 1: response; 2: read the next record
  TextSource texts = [&](std::string& text) {
    for (;;) {
      if (field == 2) {
        if (!reader.next(record)) return false;
        field = record.instruction ? 0 : 1;
      }
      const std::string& s = field == 0 ? *record.instruction : record.response;
      ++field;
      if (!s.empty()) {
        text = s;
        return true;
      }
    }
  };
  const fs::path prefix = out_dir / "tokenizer";
  for (const char* ext : {".model", ".vocab"}) created.add(fs::path(prefix).concat(ext));
  SentencePieceTokenizer tokenizer = train_sentencepiece(
      texts, {.vocab_size = options.vocab_size, .conditions = {conditions.begin(), conditions.end()}}, prefix);
  PrepareSummary summary;
  write_shards(jsonl, out_dir, tokenizer, options, created, summary);
  created.keep();
  return summary;
}

}  // namespace ponder::data
