#include "data/tasks/task_options.h"

#include <algorithm>
#include <charconv>

#include "tensor/error.h"

namespace ponder::data {

namespace {
std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : ", ") + s;
  return out.empty() ? "none" : out;
}

std::string range_text(int64_t lo, int64_t hi, int64_t step) {
  if (step == 1) return std::to_string(lo) + ".." + std::to_string(hi);
  return std::to_string(lo) + ", " + std::to_string(lo + step) + ", ..., " + std::to_string(hi);
}
}  // namespace

TaskSpec parse_task_spec(std::string_view spec) {
  TaskSpec out;
  const size_t colon = spec.find(':');
  out.name = std::string(spec.substr(0, colon));
  PONDER_CHECK(!out.name.empty(), ValueError, "task spec \"", spec, "\": the task name is empty");
  if (colon == std::string_view::npos) return out;
  std::string_view rest = spec.substr(colon + 1);
  while (true) {
    const std::string_view item = rest.substr(0, rest.find(','));
    const size_t eq = item.find('=');
    PONDER_CHECK(eq != std::string_view::npos && eq > 0 && eq + 1 < item.size(), ValueError, "task \"", out.name,
                 "\": option \"", item, "\" is not key=value");
    std::string key(item.substr(0, eq)), value(item.substr(eq + 1));
    const bool repeated = std::any_of(out.options.begin(), out.options.end(), [&](const auto& kv) { return kv.first == key; });
    PONDER_CHECK(!repeated, ValueError, "task \"", out.name, "\": option \"", key, "\" is given twice");
    out.options.emplace_back(std::move(key), std::move(value));
    if (item.size() == rest.size()) return out;
    rest = rest.substr(item.size() + 1);
  }
}

const std::string* TaskOptions::find(std::string_view key) const {
  for (const auto& [k, v] : spec_.options)
    if (k == key) return &v;
  return nullptr;
}

const std::string* TaskOptions::ask(std::string_view key) {
  allowed_keys_.emplace_back(key);
  return find(key);
}

void TaskOptions::reject(std::string_view key, std::string_view allowed) const {
  const std::string* value = find(key);
  fail<ValueError>("task \"", spec_.name, "\": ", key, "=", value ? *value : "", " is invalid (allowed: ", allowed, ")");
}

int64_t TaskOptions::integer(std::string_view key, int64_t fallback, int64_t lo, int64_t hi, int64_t step) {
  const std::string* text = ask(key);
  if (!text) return fallback;
  int64_t value = 0;
  const char* end = text->data() + text->size();
  const auto [ptr, ec] = std::from_chars(text->data(), end, value);
  const bool ok = ec == std::errc() && ptr == end && value >= lo && value <= hi && (value - lo) % step == 0;
  if (!ok) reject(key, range_text(lo, hi, step));
  return value;
}

std::string TaskOptions::choice(std::string_view key, std::string fallback, const std::vector<std::string>& allowed) {
  const std::string* text = ask(key);
  if (!text) return fallback;
  if (std::find(allowed.begin(), allowed.end(), *text) == allowed.end()) reject(key, joined(allowed));
  return *text;
}

bool TaskOptions::boolean(std::string_view key, bool fallback) {
  return choice(key, fallback ? "true" : "false", {"true", "false"}) == "true";
}

void TaskOptions::finish() const {
  for (const auto& [key, value] : spec_.options) {
    const bool allowed = std::find(allowed_keys_.begin(), allowed_keys_.end(), key) != allowed_keys_.end();
    PONDER_CHECK(allowed, ValueError, "task \"", spec_.name, "\": unknown option \"", key, "\" (allowed: ",
                 joined(allowed_keys_), ")");
  }
}

}  // namespace ponder::data
