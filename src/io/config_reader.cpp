#include "io/config_reader.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>
#include <type_traits>

#include "io/errors.h"

namespace ponder::io {
namespace {

std::string join(const std::string& path, const std::string& key) { return path.empty() ? key : path + "." + key; }

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  std::stringstream ss(path);
  std::string part;
  while (std::getline(ss, part, '.')) parts.push_back(part);
  return parts;
}

// Levenshtein distance, for "did you mean" suggestions.
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string raw_text(const YAML::Node& n) {
  if (n.IsScalar()) return "\"" + n.Scalar() + "\"";
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a mapping";
  return "nothing";
}

template <class T>
std::string type_name();
template <>
std::string type_name<double>() { return "a number"; }
template <>
std::string type_name<int64_t>() { return "an integer"; }
template <>
std::string type_name<bool>() { return "true or false"; }
template <>
std::string type_name<std::string>() { return "a string"; }
template <>
std::string type_name<std::vector<double>>() { return "a list of numbers"; }
template <>
std::string type_name<std::vector<int64_t>>() { return "a list of integers"; }
template <>
std::string type_name<std::vector<std::string>>() { return "a list of strings"; }

bool parse_scalar(const YAML::Node& n, double& out) {
  if (!n.IsScalar()) return false;
  return YAML::convert<double>::decode(n, out) && n.Scalar() != "true" && n.Scalar() != "false";
}

bool parse_scalar(const YAML::Node& n, int64_t& out) {
  if (!n.IsScalar()) return false;
  if (YAML::convert<int64_t>::decode(n, out)) return true;
  double d = 0;  // 1e9, 2.0: integral values written as numbers
  if (!parse_scalar(n, d) || !std::isfinite(d) || std::floor(d) != d || std::abs(d) > 9.0e18) return false;
  out = static_cast<int64_t>(d);
  return true;
}

bool parse_scalar(const YAML::Node& n, bool& out) { return n.IsScalar() && YAML::convert<bool>::decode(n, out); }

bool parse_scalar(const YAML::Node& n, std::string& out) {
  if (!n.IsScalar()) return false;
  out = n.Scalar();
  return true;
}

template <class E>
bool parse_scalar(const YAML::Node& n, std::vector<E>& out) {
  if (!n.IsSequence()) return false;
  out.clear();
  for (const YAML::Node& item : n) {
    E e{};
    if (!parse_scalar(item, e)) return false;
    out.push_back(e);
  }
  return true;
}

// Shortest text that reads back as the same double ("0.95", not "0.94999999999999996").
std::string shortest(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);
}

YAML::Node to_node(double v) { return YAML::Node(shortest(v)); }
YAML::Node to_node(int64_t v) { return YAML::Node(v); }
YAML::Node to_node(bool v) { return YAML::Node(v); }
YAML::Node to_node(const std::string& v) { return YAML::Node(v); }

template <class E>
YAML::Node to_node(const std::vector<E>& v) {
  YAML::Node n(YAML::NodeType::Sequence);
  for (const E& e : v) n.push_back(to_node(e));
  n.SetStyle(YAML::EmitterStyle::Flow);
  return n;
}

}  // namespace

// .inf and .nan are YAML numbers too; no setting means them.
Check<double> positive() { return {"a positive number", [](const double& v) { return v > 0 && std::isfinite(v); }}; }
Check<double> non_negative() {
  return {"a non-negative number", [](const double& v) { return v >= 0 && std::isfinite(v); }};
}
Check<double> in_range(double low, double high) {
  std::ostringstream os;
  os << "a number in [" << low << ", " << high << "]";
  return {os.str(), [=](const double& v) { return v >= low && v <= high; }};
}
Check<double> in_open_unit() { return {"a number in (0, 1)", [](const double& v) { return v > 0 && v < 1; }}; }
Check<int64_t> positive_int() { return {"a positive integer", [](const int64_t& v) { return v > 0; }}; }
Check<int64_t> non_negative_int() { return {"a non-negative integer", [](const int64_t& v) { return v >= 0; }}; }
Check<int64_t> int_at_least(int64_t low) {
  return {"an integer >= " + std::to_string(low), [=](const int64_t& v) { return v >= low; }};
}
Check<int64_t> in_range_int(int64_t low, int64_t high) {
  return {"an integer in [" + std::to_string(low) + ", " + std::to_string(high) + "]",
          [=](const int64_t& v) { return v >= low && v <= high; }};
}
Check<std::string> one_of(std::vector<std::string> choices) {
  std::string d = "one of ";
  for (size_t i = 0; i < choices.size(); ++i) d += (i ? ", " : "") + choices[i];
  return {d, [choices](const std::string& v) { return std::find(choices.begin(), choices.end(), v) != choices.end(); }};
}

// ---- Section ----

Section::Section(ConfigReader* reader, YAML::Node node, std::string path)
    : reader_(reader), node_(std::move(node)), path_(std::move(path)) {}

YAML::Node Section::value_node(const std::string& key) {
  reader_->mark_read(join(path_, key));
  const YAML::Node& self = node_;
  return self.IsMap() ? self[key] : YAML::Node();
}

bool Section::has(const std::string& key) const {
  const YAML::Node& self = node_;
  return self.IsMap() && self[key] && !self[key].IsNull();
}

void Section::fail(const std::string& key, const std::string& message) const {
  const YAML::Node& self = node_;
  std::string path = join(path_, key);
  YAML::Node at = self.IsMap() && self[key] ? self[key] : self;
  throw ConfigError(path + ": " + message + reader_->where(path, at));
}

template <class T>
T Section::convert(const std::string& key, const YAML::Node& value, const Check<T>& check) {
  T out{};
  bool typed = parse_scalar(value, out);
  if (!typed || (check.accept && !check.accept(out))) {
    fail(key, "expected " + (check.describe.empty() ? type_name<T>() : check.describe) + ", got " + raw_text(value));
  }
  return out;
}

template <class T>
T Section::get(const std::string& key, T fallback, const Check<T>& check) {
  std::optional<T> v = optional<T>(key, check);
  T out = v ? *v : fallback;
  if (!v) reader_->record(join(path_, key), to_node(out));
  return out;
}

template <class T>
T Section::require(const std::string& key, const Check<T>& check) {
  std::optional<T> v = optional<T>(key, check);
  if (!v) {
    throw ConfigError(join(path_, key) + ": required, expected " +
                      (check.describe.empty() ? type_name<T>() : check.describe) + reader_->where(path_, node_));
  }
  return *v;
}

template <class T>
std::optional<T> Section::optional(const std::string& key, const Check<T>& check) {
  YAML::Node value = value_node(key);
  // An empty text or list is "none" (`--set data.task=`); an empty number or switch is a mistake.
  if (value && value.IsNull() && std::is_arithmetic_v<T>) {
    fail(key, "expected " + (check.describe.empty() ? type_name<T>() : check.describe) + ", got nothing");
  }
  if (!value || value.IsNull()) return std::nullopt;
  T out = convert<T>(key, value, check);
  reader_->record(join(path_, key), to_node(out));
  return out;
}

YAML::Node Section::raw(const std::string& key) {
  YAML::Node value = value_node(key);
  if (value) reader_->record(join(path_, key), value);
  return value;
}

Section Section::section(const std::string& key) {
  YAML::Node value = value_node(key);
  if (value && !value.IsNull() && !value.IsMap()) fail(key, "expected a mapping, got " + raw_text(value));
  return Section(reader_, value && value.IsMap() ? value : YAML::Node(YAML::NodeType::Map), join(path_, key));
}

#define PONDER_SECTION_TYPE(T)                                                             \
  template T Section::get<T>(const std::string&, T, const Check<T>&);                     \
  template T Section::require<T>(const std::string&, const Check<T>&);                    \
  template std::optional<T> Section::optional<T>(const std::string&, const Check<T>&);
PONDER_SECTION_TYPE(double)
PONDER_SECTION_TYPE(int64_t)
PONDER_SECTION_TYPE(bool)
PONDER_SECTION_TYPE(std::string)
PONDER_SECTION_TYPE(std::vector<double>)
PONDER_SECTION_TYPE(std::vector<int64_t>)
PONDER_SECTION_TYPE(std::vector<std::string>)
#undef PONDER_SECTION_TYPE

// ---- ConfigReader ----

namespace {
// yaml-cpp keeps the last of repeated keys; a repeated key is almost always a mistake.
void reject_duplicate_keys(const YAML::Node& node, const std::string& path) {
  if (node.IsSequence()) {
    for (const YAML::Node& item : node) reject_duplicate_keys(item, path);
    return;
  }
  if (!node.IsMap()) return;
  std::set<std::string> seen;
  for (const auto& item : node) {
    const std::string key = item.first.Scalar(), full = join(path, key);
    if (!seen.insert(key).second) {
      throw ConfigError("duplicate key " + full + " (line " + std::to_string(item.first.Mark().line + 1) + ")");
    }
    reject_duplicate_keys(item.second, full);
  }
}
}  // namespace

ConfigReader::ConfigReader(YAML::Node root, std::string origin)
    : root_(root && !root.IsNull() ? root : YAML::Node(YAML::NodeType::Map)),
      resolved_(YAML::NodeType::Map), origin_(std::move(origin)) {
  if (!root_.IsMap()) throw ConfigError(origin_ + ": expected a mapping of sections at the top level");
  reject_duplicate_keys(root_, "");
}

ConfigReader ConfigReader::from_string(const std::string& text, const std::string& origin) {
  try {
    return ConfigReader(YAML::Load(text), origin);
  } catch (const YAML::Exception& e) {
    throw ConfigError(origin + ": not valid YAML: " + e.msg + " (line " + std::to_string(e.mark.line + 1) + ")");
  }
}

ConfigReader ConfigReader::from_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw IoError(path + ": cannot open for reading");
  std::stringstream ss;
  ss << in.rdbuf();
  return from_string(ss.str(), path);
}

void ConfigReader::set(const std::string& assignment) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) throw ConfigError("--set expects key.path=value, got \"" + assignment + "\"");
  const std::string path = assignment.substr(0, eq);
  YAML::Node value;
  try {
    value = YAML::Load(assignment.substr(eq + 1));
  } catch (const YAML::Exception& e) {
    throw ConfigError("--set " + path + ": value is not valid YAML: " + e.msg);
  }
  std::vector<std::string> parts = split_path(path);
  YAML::Node node = root_;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    if (parts[i].empty()) throw ConfigError("--set: empty key in \"" + path + "\"");
    YAML::Node child = node[parts[i]];
    if (!child || child.IsNull()) {
      child.reset(YAML::Node(YAML::NodeType::Map));
      node[parts[i]] = child;
    }
    if (!child.IsMap()) throw ConfigError("--set " + path + ": " + parts[i] + " is not a mapping");
    node.reset(child);  // rebind (operator= would overwrite the parent's contents)
  }
  node[parts.back()] = value;
  overridden_.insert(path);
}

Section ConfigReader::root() { return Section(this, root_, ""); }

std::string ConfigReader::where(const std::string& path, const YAML::Node& node) const {
  if (overridden_.count(path)) return " (from --set)";
  if (node && node.Mark().line >= 0) return " (line " + std::to_string(node.Mark().line + 1) + ")";
  return "";
}

void ConfigReader::mark_read(const std::string& path) { read_paths_.insert(path); }

void ConfigReader::record(const std::string& path, const YAML::Node& value) {
  std::vector<std::string> parts = split_path(path);
  YAML::Node node = resolved_;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    YAML::Node child = node[parts[i]];
    if (!child.IsMap()) {
      child.reset(YAML::Node(YAML::NodeType::Map));
      node[parts[i]] = child;
    }
    node.reset(child);  // rebind (operator= would overwrite the parent's contents)
  }
  node[parts.back()] = value;
}

void ConfigReader::find_unknown(const YAML::Node& node, const std::string& path) const {
  for (const auto& item : node) {
    const std::string key = item.first.Scalar();
    const std::string full = join(path, key);
    if (read_paths_.count(full)) {
      if (item.second.IsMap()) find_unknown(item.second, full);
      continue;
    }
    // Suggest the closest key that was asked for in the same mapping.
    std::string best;
    size_t best_distance = std::max<size_t>(2, key.size() / 2) + 1;
    const std::string prefix = path.empty() ? "" : path + ".";
    for (const std::string& known : read_paths_) {
      if (known.compare(0, prefix.size(), prefix) != 0) continue;
      std::string rest = known.substr(prefix.size());
      if (rest.find('.') != std::string::npos) continue;
      size_t d = edit_distance(key, rest);
      if (d < best_distance) {
        best_distance = d;
        best = rest;
      }
    }
    std::string message = "unknown key " + full + where(full, item.first);
    if (!best.empty()) message += "; did you mean \"" + best + "\"?";
    throw ConfigError(message);
  }
}

void ConfigReader::check_unknown_keys() const { find_unknown(root_, ""); }

std::string ConfigReader::resolved() const {
  YAML::Emitter out;
  out << resolved_;
  return std::string(out.c_str()) + "\n";
}

}  // namespace ponder::io
