// Strict, typed reading of YAML configuration (recipes, trainer state). Every value is read
// through a Section, which knows its dotted path and its line, so an error names both:
//   optim.lr: expected a positive number, got "fast" (line 12)
// Keys that nobody read are reported at the end, with a near-miss suggestion:
//   unknown key model.hedas (line 5); did you mean "heads"?
// The reader also records every value it returned (defaults included), which makes the resolved
// configuration that is written next to a run.
#pragma once

#include <yaml-cpp/yaml.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "tensor/error.h"

namespace ponder::io {

// Invalid configuration: the message starts with the dotted path of the offending key.
class ConfigError : public ValueError {
 public:
  using ValueError::ValueError;
};

// A constraint on a value: `describe` completes "expected ..." (e.g. "a positive number").
template <class T>
struct Check {
  std::string describe;
  std::function<bool(const T&)> accept;
};

Check<double> positive();
Check<double> non_negative();
Check<double> in_range(double low, double high);  // closed interval
Check<double> in_open_unit();                     // (0, 1)
Check<int64_t> positive_int();
Check<int64_t> non_negative_int();
Check<int64_t> int_at_least(int64_t low);
Check<int64_t> in_range_int(int64_t low, int64_t high);  // closed interval
Check<std::string> one_of(std::vector<std::string> choices);

class ConfigReader;

class Section {
 public:
  // The value at `key`, or `fallback` when the key is absent.
  template <class T>
  T get(const std::string& key, T fallback, const Check<T>& check = {});
  template <class T>
  T require(const std::string& key, const Check<T>& check = {});
  template <class T>
  std::optional<T> optional(const std::string& key, const Check<T>& check = {});
  // A nested mapping (empty when absent).
  Section section(const std::string& key);
  // The raw node of a key with a structure of its own (the caller validates it).
  YAML::Node raw(const std::string& key);
  bool has(const std::string& key) const;
  // Fails with `message` attributed to `key` of this section.
  [[noreturn]] void fail(const std::string& key, const std::string& message) const;
  const std::string& path() const { return path_; }

 private:
  friend class ConfigReader;
  Section(ConfigReader* reader, YAML::Node node, std::string path);
  template <class T>
  T convert(const std::string& key, const YAML::Node& value, const Check<T>& check);
  YAML::Node value_node(const std::string& key);

  ConfigReader* reader_;
  YAML::Node node_;
  std::string path_;
};

class ConfigReader {
 public:
  // `origin` names the document in errors (a file path).
  ConfigReader(YAML::Node root, std::string origin);
  static ConfigReader from_file(const std::string& path);
  static ConfigReader from_string(const std::string& text, const std::string& origin);

  // Applies "a.b.c=value" before reading (value parsed as YAML); creates missing mappings.
  void set(const std::string& assignment);
  Section root();
  // Reports the first key that was never read (with a suggestion), if any.
  void check_unknown_keys() const;
  // Every value read, defaults included, as YAML text.
  std::string resolved() const;

 private:
  friend class Section;
  std::string where(const std::string& path, const YAML::Node& node) const;
  void record(const std::string& path, const YAML::Node& value);
  void mark_read(const std::string& path);
  void find_unknown(const YAML::Node& node, const std::string& path) const;

  YAML::Node root_;
  YAML::Node resolved_;
  std::string origin_;
  std::set<std::string> read_paths_;     // keys that were looked up (present or not)
  std::set<std::string> overridden_;     // keys set with --set
};

}  // namespace ponder::io
