// Run metrics: metrics.jsonl gets one JSON object per logged step (and per evaluation); the
// console shows the same numbers as a live progress line on a terminal, or as plain log lines.
#pragma once

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

namespace spdlog {
class logger;
}

namespace ponder::train {

class MetricsLog {
 public:
  explicit MetricsLog(const std::filesystem::path& path);
  // Appends one record and flushes it (a killed run keeps every line written so far).
  void write(const nlohmann::json& record);

 private:
  std::ofstream out_;
};

// The console side: on a terminal one line rewritten in place, else spdlog lines (also written to
// the run's log.txt).
class Progress {
 public:
  Progress(std::shared_ptr<spdlog::logger> log, int64_t total_steps);
  void step(const nlohmann::json& record);
  void eval(const nlohmann::json& record);
  void message(const std::string& text);
  void finish();

 private:
  std::shared_ptr<spdlog::logger> log_;
  int64_t total_;
  bool live_;
  bool line_open_ = false;
  std::chrono::steady_clock::time_point start_;
};

// A logger writing to stderr and to `log_file` (appending).
std::shared_ptr<spdlog::logger> make_run_logger(const std::filesystem::path& log_file);

}  // namespace ponder::train
