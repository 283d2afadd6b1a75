// ponder train / resume.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/commands.h"
#include "cli/errors.h"
#include "io/atomic_file.h"
#include "io/errors.h"
#include "train/checkpoint.h"
#include "train/session.h"

namespace ponder::cli {
namespace fs = std::filesystem;

namespace {

void write_text(const fs::path& path, const std::string& text) {
  io::AtomicFile f(path);
  f.write(text.data(), text.size());
  f.commit();
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw io::IoError(path.string() + ": cannot open for reading");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A run directory is "in use" once it holds a recipe or checkpoints.
bool run_in_use(const fs::path& dir) {
  return fs::exists(dir / "recipe.yaml") || fs::exists(dir / "checkpoints") || fs::exists(dir / "metrics.jsonl");
}

int run_to_end(train::Trainer& trainer, Phase& phase) {
  phase.running();
  train::RunEnd end = trainer.run();
  return end == train::RunEnd::diverged ? 1 : 0;
}

// The parts of a recipe a resumed run must share with the checkpoint's: the model and the data.
void check_compatible(const io::Recipe& now, const io::Recipe& saved, const fs::path& checkpoint) {
  auto section = [](const std::string& yaml, const std::string& key) {
    YAML::Emitter e;
    e << YAML::Load(yaml)[key];
    return std::string(e.c_str());
  };
  for (const char* key : {"model", "data", "batch"}) {
    PONDER_CHECK(section(now.resolved_yaml, key) == section(saved.resolved_yaml, key), io::ConfigError, key,
                 ": differs from the recipe of ", checkpoint.string(), "; a resumed run keeps its model, data and batch");
  }
}

}  // namespace

int train(const TrainArgs& args) {
  return guarded([&](Phase& phase) {
    io::Recipe recipe = io::load_recipe(args.recipe, args.overrides);
    fs::path run_dir = args.run_dir.empty() ? fs::path("runs") / fs::path(args.recipe).stem() : fs::path(args.run_dir);
    if (run_in_use(run_dir)) {
      PONDER_CHECK(args.force, io::IoError, run_dir.string(), " already holds a run; continue it with `ponder resume ",
                   run_dir.string(), "`, or pass --force to start over (its checkpoints are deleted)");
      fs::remove_all(run_dir);
    }
    fs::create_directories(run_dir);
    write_text(run_dir / "recipe.yaml", recipe.resolved_yaml);
    train::Trainer trainer(train::make_context(recipe, run_dir));
    return run_to_end(trainer, phase);
  });
}

int resume(const ResumeArgs& args) {
  return guarded([&](Phase& phase) {
    const fs::path run_dir = args.run_dir;
    PONDER_CHECK(fs::exists(run_dir / "recipe.yaml"), io::IoError, run_dir.string(),
                 " is not a run directory (no recipe.yaml)");
    std::vector<std::string> rejected;
    auto newest = train::newest_complete_checkpoint(run_dir / "checkpoints", &rejected);
    for (const std::string& why : rejected) std::fprintf(stderr, "ponder: skipping %s\n", why.c_str());
    PONDER_CHECK(newest.has_value(), io::FormatError, run_dir.string(), ": no complete checkpoint to resume from");
    train::LoadedCheckpoint checkpoint = train::read_checkpoint(*newest);
    io::Recipe saved = io::parse_recipe(checkpoint.recipe_yaml, (*newest / "recipe.yaml").string());
    io::Recipe recipe = io::parse_recipe(read_text(run_dir / "recipe.yaml"), (run_dir / "recipe.yaml").string(), args.overrides);
    check_compatible(recipe, saved, *newest);
    PONDER_CHECK(checkpoint.state.step < recipe.train.steps, io::ConfigError, "train.steps: the run already reached step ",
                 checkpoint.state.step, " of ", recipe.train.steps, "; pass --set train.steps=N to train further");
    write_text(run_dir / "recipe.yaml", recipe.resolved_yaml);
    train::Trainer trainer(train::make_context(recipe, run_dir));
    trainer.restore(checkpoint);
    return run_to_end(trainer, phase);
  });
}

}  // namespace ponder::cli
