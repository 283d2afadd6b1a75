// ponder train / resume.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/commands.h"
#include "cli/errors.h"
#include "dist/launch.h"
#include "dist/spawn.h"
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

// This process's place in the job (one process unless a launcher started several).
dist::LaunchEnv join(Phase& phase) {
  dist::LaunchEnv env = dist::detect_launch();
  if (env.rank != 0) phase.defer_to_rank_zero();
  return env;
}

// --gpus N: the job's size. Without a launcher this process starts the N ranks itself (see
// dist/spawn.h); under one, N must be its size.
int64_t world_size(const dist::LaunchEnv& env, int64_t gpus) {
  if (gpus == 0) return env.world_size;
  if (env.launcher != "none") {
    PONDER_CHECK(gpus == env.world_size, io::ConfigError, "--gpus ", gpus, " but the ", env.launcher, " launch has ",
                 env.world_size, " ranks");
    return gpus;
  }
  const int visible = cuda_device_count();
  PONDER_CHECK(gpus <= visible, DeviceError, "--gpus ", gpus, ": only ", visible, " CUDA device", visible == 1 ? " is" : "s are",
               " visible");
  return gpus;
}

void check_gpu_recipe(const io::Recipe& recipe, int64_t gpus) {
  PONDER_CHECK(gpus == 0 || recipe.runtime.device != "cpu", io::ConfigError, "--gpus ", gpus,
               ": the recipe trains on the CPU (runtime.device: cpu)");
}

// The communicator of the job, once every rank has checked that all run the same recipe.
std::shared_ptr<dist::Communicator> connect(const dist::LaunchEnv& env, const io::Recipe& recipe, int64_t gpus) {
  auto comm = dist::make_communicator(env, train::resolve_device(recipe, env.local_rank), /*nccl_alone=*/gpus > 0);
  dist::check_same_recipe(*comm, recipe.resolved_yaml);
  return comm;
}

}  // namespace

int train(const TrainArgs& args) {
  return guarded([&](Phase& phase) {
    const dist::LaunchEnv env = join(phase);
    const int64_t world = world_size(env, args.gpus);
    io::Recipe recipe = io::load_recipe(args.recipe, args.overrides, world);
    check_gpu_recipe(recipe, args.gpus);
    if (world > env.world_size) return dist::spawn_local_ranks(int(world));
    fs::path run_dir = args.run_dir.empty() ? fs::path("runs") / fs::path(args.recipe).stem() : fs::path(args.run_dir);
    const bool replaces_a_run = run_in_use(run_dir);
    PONDER_CHECK(!replaces_a_run || args.force, io::IoError, run_dir.string(),
                 " already holds a run; continue it with `ponder resume ", run_dir.string(),
                 "`, or pass --force to start over (its checkpoints are deleted)");
    auto comm = connect(env, recipe, args.gpus);
    // Everything the recipe names (data, tokenizer, model) is checked before the old run goes.
    train::TrainContext context = train::make_context(recipe, run_dir, comm);
    dist::on_rank0(*comm, [&] {
      if (replaces_a_run) fs::remove_all(run_dir);
      fs::create_directories(run_dir);
      write_text(run_dir / "recipe.yaml", context.recipe.resolved_yaml);
    });
    train::Trainer trainer(std::move(context));
    return run_to_end(trainer, phase);
  });
}

int resume(const ResumeArgs& args) {
  return guarded([&](Phase& phase) {
    const dist::LaunchEnv env = join(phase);
    const int64_t world = world_size(env, args.gpus);
    const fs::path run_dir = args.run_dir;
    PONDER_CHECK(fs::exists(run_dir / "recipe.yaml"), io::IoError, run_dir.string(),
                 " is not a run directory (no recipe.yaml)");
    std::vector<std::string> rejected;
    auto newest = train::newest_complete_checkpoint(run_dir / "checkpoints", &rejected);
    for (const std::string& why : rejected) std::fprintf(stderr, "ponder: skipping %s\n", why.c_str());
    PONDER_CHECK(newest.has_value(), io::FormatError, run_dir.string(), ": no complete checkpoint to resume from");
    train::LoadedCheckpoint checkpoint = train::read_checkpoint(*newest);
    io::Recipe saved = io::parse_recipe(checkpoint.recipe_yaml, (*newest / "recipe.yaml").string());
    io::Recipe recipe = io::parse_recipe(read_text(run_dir / "recipe.yaml"), (run_dir / "recipe.yaml").string(),
                                         args.overrides, world);
    check_gpu_recipe(recipe, args.gpus);
    if (world > env.world_size) return dist::spawn_local_ranks(int(world));
    check_compatible(recipe, saved, *newest);
    PONDER_CHECK(checkpoint.state.step < recipe.train.steps, io::ConfigError, "train.steps: the run already reached step ",
                 checkpoint.state.step, " of ", recipe.train.steps, "; pass --set train.steps=N to train further");
    auto comm = connect(env, recipe, args.gpus);
    dist::on_rank0(*comm, [&] { write_text(run_dir / "recipe.yaml", recipe.resolved_yaml); });
    train::Trainer trainer(train::make_context(recipe, run_dir, comm));
    trainer.restore(checkpoint);
    return run_to_end(trainer, phase);
  });
}

}  // namespace ponder::cli
