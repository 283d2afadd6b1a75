#include "train/metrics.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>

#include "io/errors.h"

namespace ponder::train {

MetricsLog::MetricsLog(const std::filesystem::path& path) : out_(path, std::ios::app) {
  if (!out_) throw io::IoError(path.string() + ": cannot open for writing");
}

void MetricsLog::write(const nlohmann::json& record) {
  out_ << record.dump() << '\n';
  out_.flush();
  if (!out_) throw io::IoError("metrics.jsonl: write failed (disk full?)");
}

std::shared_ptr<spdlog::logger> make_run_logger(const std::filesystem::path& log_file) {
  auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  auto file = std::make_shared<spdlog::sinks::basic_file_sink_mt>(log_file.string(), /*truncate=*/false);
  auto logger = std::make_shared<spdlog::logger>("ponder", spdlog::sinks_init_list{console, file});
  logger->set_pattern("[%Y-%m-%d %H:%M:%S] %v");
  logger->flush_on(spdlog::level::info);
  return logger;
}

namespace {
std::string human_duration(double seconds) {
  char buf[32];
  int s = static_cast<int>(seconds);
  std::snprintf(buf, sizeof buf, "%d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60);
  return buf;
}

std::string step_line(const nlohmann::json& r, int64_t total, double elapsed) {
  const int64_t step = r.value("step", int64_t{0});
  const double rate = elapsed > 0 ? double(step - r.value("first_step", int64_t{0})) / elapsed : 0;
  const double eta = rate > 0 ? double(total - step) / rate : 0;
  char buf[256];
  std::snprintf(buf, sizeof buf, "step %lld/%lld  loss %.4f  lr %.3g  %.0f tok/s", static_cast<long long>(step),
                static_cast<long long>(total), r.value("loss", 0.0), r.value("lr", 0.0), r.value("tokens_per_s", 0.0));
  std::string line = buf;
  if (r.contains("mfu")) {
    std::snprintf(buf, sizeof buf, "  mfu %.1f%%", 100 * r["mfu"].get<double>());
    line += buf;
  }
  if (r.contains("mem_bytes")) {
    std::snprintf(buf, sizeof buf, "  mem %.2f GiB", r["mem_bytes"].get<double>() / (1 << 30));
    line += buf;
  }
  if (r.value("skipped_steps", int64_t{0}) > 0) line += "  skipped " + std::to_string(r["skipped_steps"].get<int64_t>());
  return line + "  eta " + human_duration(eta);
}
}  // namespace

Progress::Progress(std::shared_ptr<spdlog::logger> log, int64_t total_steps)
    : log_(std::move(log)), total_(total_steps), live_(::isatty(2) == 1), start_(std::chrono::steady_clock::now()) {}

void Progress::step(const nlohmann::json& record) {
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::string line = step_line(record, total_, elapsed);
  if (live_) {
    std::fprintf(stderr, "\r\033[K%s", line.c_str());
    std::fflush(stderr);
    line_open_ = true;
  } else {
    log_->info(line);
  }
}

void Progress::eval(const nlohmann::json& record) {
  std::string line = "eval at step " + std::to_string(record.value("step", int64_t{0}));
  for (const auto& [k, v] : record.items()) {
    if (k.rfind("eval.", 0) == 0 && v.is_number()) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "  %s %.4f", k.c_str() + 5, v.get<double>());
      line += buf;
    }
  }
  message(line);
}

void Progress::message(const std::string& text) {
  if (line_open_) {
    std::fprintf(stderr, "\n");
    line_open_ = false;
  }
  log_->info(text);
}

void Progress::finish() {
  if (line_open_) std::fprintf(stderr, "\n");
  line_open_ = false;
}

}  // namespace ponder::train
