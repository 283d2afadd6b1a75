#include "train/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "io/atomic_file.h"
#include "io/checksum.h"
#include "io/config_reader.h"
#include "io/errors.h"
#include "io/safetensors.h"

namespace ponder::train {
namespace fs = std::filesystem;

namespace {

constexpr const char* kPrefix = "step_";
constexpr const char* kTempPrefix = ".incomplete_";

void write_text(const fs::path& path, const std::string& text) {
  io::AtomicFile f(path);
  f.write(text.data(), text.size());
  f.commit();
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw io::FormatError(path.string() + ": missing");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Makes a directory's entries durable (the rename of a checkpoint into place).
void sync_directory(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

std::map<std::string, Tensor> load_tensors(const fs::path& path) { return io::load_safetensors(path).tensors; }

int64_t step_of(const std::string& name) {
  if (name.rfind(kPrefix, 0) != 0) return -1;
  std::string digits = name.substr(std::string(kPrefix).size());
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), ::isdigit) || digits.size() > 15) return -1;
  return std::stoll(digits);
}

// Checkpoint directories by step, newest first.
std::vector<std::pair<int64_t, fs::path>> checkpoint_dirs(const fs::path& dir) {
  std::vector<std::pair<int64_t, fs::path>> out;
  if (!fs::is_directory(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir)) {
    int64_t step = step_of(e.path().filename().string());
    if (step >= 0 && e.is_directory()) out.emplace_back(step, e.path());
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  return out;
}

// Puts the finished temporary directory in place. Rewriting a step (a resume that saves the step
// it started from) swaps the two directories in one rename, so the old checkpoint stays whole
// until the new one is in place; the old one is then deleted under the temporary name.
void move_into_place(const fs::path& temp, const fs::path& final_dir) {
  if (!fs::exists(final_dir)) {
    fs::rename(temp, final_dir);
  } else if (::renameat2(AT_FDCWD, temp.c_str(), AT_FDCWD, final_dir.c_str(), RENAME_EXCHANGE) == 0) {
    fs::remove_all(temp);
  } else {  // a file system without exchange
    fs::remove_all(final_dir);
    fs::rename(temp, final_dir);
  }
}

}  // namespace

std::string checkpoint_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s%08lld", kPrefix, static_cast<long long>(step));
  return buf;
}

std::string trainer_state_yaml(const TrainerState& s) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "step" << YAML::Value << s.step;
  out << YAML::Key << "tokens" << YAML::Value << s.tokens;
  out << YAML::Key << "skipped_steps" << YAML::Value << s.skipped_steps;
  out << YAML::Key << "consecutive_skips" << YAML::Value << s.consecutive_skips;
  out << YAML::Key << "world_size" << YAML::Value << s.world_size;
  out << YAML::Key << "data_state" << YAML::Value << YAML::DoubleQuoted << s.data_state;
  out << YAML::Key << "generators" << YAML::Value << YAML::BeginSeq;
  for (const GeneratorState& g : s.generators) {
    out << YAML::Flow << YAML::BeginMap << YAML::Key << "seed" << YAML::Value << std::to_string(g.seed)
        << YAML::Key << "offset" << YAML::Value << std::to_string(g.offset) << YAML::EndMap;
  }
  out << YAML::EndSeq;
  // Shortest round-trip decimal strings, so a resumed spike guard sees the same numbers.
  out << YAML::Key << "recent_losses" << YAML::Value << YAML::Flow << YAML::BeginSeq;
  for (double loss : s.recent_losses) {
    char buf[32];
    out << std::string(buf, std::to_chars(buf, buf + sizeof buf, loss).ptr);
  }
  out << YAML::EndSeq << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

TrainerState parse_trainer_state(const std::string& yaml, const std::string& origin) {
  io::ConfigReader reader = io::ConfigReader::from_string(yaml, origin);
  io::Section root = reader.root();
  TrainerState s;
  s.step = root.require<int64_t>("step", io::non_negative_int());
  s.tokens = root.require<int64_t>("tokens", io::non_negative_int());
  s.skipped_steps = root.get<int64_t>("skipped_steps", 0, io::non_negative_int());
  s.consecutive_skips = root.get<int64_t>("consecutive_skips", 0, io::non_negative_int());
  s.world_size = root.require<int64_t>("world_size", io::positive_int());
  s.data_state = root.get<std::string>("data_state", "");
  // Generators are a list of {seed, offset}; 64-bit values are written as decimal strings.
  YAML::Node gens = root.raw("generators");
  if (gens && !gens.IsSequence()) root.fail("generators", "expected a list");
  for (size_t i = 0; gens && i < gens.size(); ++i) {
    const YAML::Node& g = gens[i];
    if (!g.IsMap() || !g["seed"] || !g["offset"] || !g["seed"].IsScalar() || !g["offset"].IsScalar()) {
      root.fail("generators", "entry " + std::to_string(i) + " is not {seed, offset}");
    }
    try {
      size_t used = 0;
      GeneratorState st{std::stoull(g["seed"].Scalar(), &used), 0};
      if (used != g["seed"].Scalar().size()) throw std::invalid_argument("seed");
      st.offset = std::stoull(g["offset"].Scalar(), &used);
      if (used != g["offset"].Scalar().size()) throw std::invalid_argument("offset");
      s.generators.push_back(st);
    } catch (const std::logic_error&) {
      root.fail("generators", "entry " + std::to_string(i) + " has a seed or offset that is not an unsigned integer");
    }
  }
  YAML::Node losses = root.raw("recent_losses");
  if (losses && !losses.IsSequence()) root.fail("recent_losses", "expected a list");
  for (size_t i = 0; losses && i < losses.size(); ++i) {
    const std::string text = losses[i].IsScalar() ? losses[i].Scalar() : "";
    double v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() || !std::isfinite(v))
      root.fail("recent_losses", "entry " + std::to_string(i) + " is not a finite number");
    s.recent_losses.push_back(v);
  }
  reader.check_unknown_keys();
  return s;
}

namespace {

// Every file of a checkpoint, COMPLETE last, into `temp`.
void write_checkpoint_files(const fs::path& temp, const CheckpointContents& c) {
  io::save_safetensors(temp / "model.safetensors", c.model);
  for (size_t r = 0; r < c.optimizer.size(); ++r) {
    io::save_safetensors(temp / ("optimizer.rank" + std::to_string(r) + ".safetensors"), c.optimizer[r]);
  }
  if (!c.ema.empty()) io::save_safetensors(temp / "ema.safetensors", c.ema);
  write_text(temp / "trainer.yaml", trainer_state_yaml(c.state));
  write_text(temp / "recipe.yaml", c.recipe_yaml);
  // COMPLETE lists what was written, last.
  YAML::Emitter complete;
  complete << YAML::BeginMap << YAML::Key << "step" << YAML::Value << c.state.step << YAML::Key << "files"
           << YAML::Value << YAML::BeginMap;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(temp)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const fs::path& f : files) {
    complete << YAML::Key << f.filename().string() << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key
             << "bytes" << YAML::Value << static_cast<int64_t>(fs::file_size(f)) << YAML::Key << "crc32"
             << YAML::Value << io::crc_hex(io::file_crc32(f)) << YAML::EndMap;
  }
  complete << YAML::EndMap << YAML::EndMap;
  write_text(temp / "COMPLETE", std::string(complete.c_str()) + "\n");
}

}  // namespace

fs::path write_checkpoint(const fs::path& checkpoints_dir, const CheckpointContents& c) {
  fs::create_directories(checkpoints_dir);
  const fs::path final_dir = checkpoints_dir / checkpoint_name(c.state.step);
  const fs::path temp = checkpoints_dir / (kTempPrefix + checkpoint_name(c.state.step));
  fs::remove_all(temp);
  fs::create_directory(temp);
  try {
    write_checkpoint_files(temp, c);
  } catch (...) {  // a full disk: give back what the partial checkpoint took; older ones are untouched
    std::error_code ec;
    fs::remove_all(temp, ec);
    throw;
  }
  sync_directory(temp);
  move_into_place(temp, final_dir);
  sync_directory(checkpoints_dir);
  return final_dir;
}

LoadedCheckpoint read_checkpoint(const fs::path& dir) {
  const fs::path marker = dir / "COMPLETE";
  if (!fs::exists(marker)) throw io::FormatError(dir.string() + ": no COMPLETE marker (an interrupted write)");
  YAML::Node complete;
  try {
    complete = YAML::Load(read_text(marker));
  } catch (const YAML::Exception& e) {
    throw io::FormatError(marker.string() + ": not valid YAML: " + e.msg);
  }
  if (!complete.IsMap() || !complete["files"] || !complete["files"].IsMap()) {
    throw io::FormatError(marker.string() + ": has no file list");
  }
  for (const auto& f : complete["files"]) {
    const fs::path p = dir / f.first.Scalar();
    if (!fs::exists(p)) throw io::FormatError(p.string() + ": listed in COMPLETE but missing");
    const YAML::Node& info = f.second;
    if (!info.IsMap() || !info["bytes"] || !info["crc32"]) throw io::FormatError(marker.string() + ": bad entry " + f.first.Scalar());
    if (std::to_string(fs::file_size(p)) != info["bytes"].Scalar()) {
      throw io::FormatError(p.string() + ": size " + std::to_string(fs::file_size(p)) + " differs from COMPLETE (" +
                            info["bytes"].Scalar() + ")");
    }
    if (io::crc_hex(io::file_crc32(p)) != info["crc32"].Scalar()) {
      throw io::FormatError(p.string() + ": checksum differs from COMPLETE (the file is corrupt)");
    }
  }
  LoadedCheckpoint c;
  c.dir = dir;
  c.model = load_tensors(dir / "model.safetensors");
  for (int r = 0; fs::exists(dir / ("optimizer.rank" + std::to_string(r) + ".safetensors")); ++r) {
    c.optimizer.push_back(load_tensors(dir / ("optimizer.rank" + std::to_string(r) + ".safetensors")));
  }
  if (fs::exists(dir / "ema.safetensors")) c.ema = load_tensors(dir / "ema.safetensors");
  try {
    c.state = parse_trainer_state(read_text(dir / "trainer.yaml"), (dir / "trainer.yaml").string());
  } catch (const io::ConfigError& e) {  // its message names the key, not the file
    throw io::FormatError((dir / "trainer.yaml").string() + ": " + e.what());
  }
  c.recipe_yaml = read_text(dir / "recipe.yaml");
  return c;
}

std::optional<fs::path> newest_complete_checkpoint(const fs::path& checkpoints_dir, std::vector<std::string>* rejected) {
  for (const auto& [step, dir] : checkpoint_dirs(checkpoints_dir)) {
    try {
      read_checkpoint(dir);
      return dir;
    } catch (const Error& e) {
      if (rejected) rejected->push_back(e.what());
    }
  }
  return std::nullopt;
}

fs::path resolve_checkpoint(const fs::path& source) {
  if (fs::exists(source / "COMPLETE")) return source;
  PONDER_CHECK(fs::is_directory(source), io::IoError, source.string(), ": no such run or checkpoint directory");
  std::vector<std::string> rejected;
  auto newest = newest_complete_checkpoint(source / "checkpoints", &rejected);
  if (!newest) {
    std::string why = rejected.empty() ? "" : " (" + rejected.front() + ")";
    throw io::FormatError(source.string() + ": no complete checkpoint" + why);
  }
  return *newest;
}

void prune_checkpoints(const fs::path& checkpoints_dir, int64_t keep, int64_t keep_every) {
  if (!fs::is_directory(checkpoints_dir)) return;
  for (const auto& e : fs::directory_iterator(checkpoints_dir)) {
    if (e.path().filename().string().rfind(kTempPrefix, 0) == 0) fs::remove_all(e.path());
  }
  int64_t kept = 0;
  for (const auto& [step, dir] : checkpoint_dirs(checkpoints_dir)) {
    if (!fs::exists(dir / "COMPLETE")) continue;  // never delete what might be someone's only copy
    if (kept++ < keep) continue;
    if (keep_every > 0 && step % keep_every == 0) continue;
    fs::remove_all(dir);
  }
}

}  // namespace ponder::train
