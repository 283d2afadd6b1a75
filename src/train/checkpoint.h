// Checkpoint directories (DESIGN.md §5):
//   checkpoints/step_00001200/
//     model.safetensors            fp32 master weights (and persistent buffers)
//     optimizer.rank0.safetensors  optimizer state of each rank
//     ema.safetensors              EMA weights, when the recipe keeps an EMA
//     trainer.yaml                 step, tokens, random streams, data cursor, world size
//     recipe.yaml                  the resolved recipe
//     COMPLETE                     written last: every file with its size and CRC-32
// A checkpoint is written under a temporary name and renamed into place, so a crash never leaves
// a directory that looks complete; a reader accepts a directory only if COMPLETE lists every file
// with the right size and checksum.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "nn/module.h"
#include "tensor/generator.h"

namespace ponder::train {

struct TrainerState {
  int64_t step = 0;              // optimizer steps completed
  int64_t tokens = 0;            // tokens consumed, all ranks
  int64_t skipped_steps = 0;     // non-finite steps skipped so far
  int64_t consecutive_skips = 0;
  int64_t world_size = 1;
  std::string data_state;        // the batch source's cursor
  std::vector<GeneratorState> generators;  // random streams of the model (dropout)
  std::vector<double> recent_losses;       // the loss-spike guard's window: the last good steps' losses
};

struct CheckpointContents {
  nn::NamedTensors model;
  std::vector<nn::NamedTensors> optimizer;  // one entry per rank
  nn::NamedTensors ema;                     // empty without EMA
  TrainerState state;
  std::string recipe_yaml;
};

struct LoadedCheckpoint {
  std::filesystem::path dir;
  std::map<std::string, Tensor> model, ema;
  std::vector<std::map<std::string, Tensor>> optimizer;  // per rank, as written
  TrainerState state;
  std::string recipe_yaml;
};

std::string checkpoint_name(int64_t step);  // "step_00001200"

// Writes checkpoints_dir/step_XXXXXXXX atomically and returns its path.
std::filesystem::path write_checkpoint(const std::filesystem::path& checkpoints_dir, const CheckpointContents& c);

// Reads and verifies a checkpoint directory (FormatError naming the problem if it is incomplete
// or corrupt).
LoadedCheckpoint read_checkpoint(const std::filesystem::path& dir);

// The newest directory that verifies; directories that do not are listed in `rejected` with the
// reason (a resume reports them) and never loaded.
std::optional<std::filesystem::path> newest_complete_checkpoint(const std::filesystem::path& checkpoints_dir,
                                                                std::vector<std::string>* rejected = nullptr);

// `source` itself when it is a complete checkpoint directory, else the newest complete checkpoint
// of the run directory `source` (IoError / FormatError naming the directory when there is none).
std::filesystem::path resolve_checkpoint(const std::filesystem::path& source);

// Deletes complete checkpoints beyond the newest `keep`, except every `keep_every`-th step
// (0 = none), and leftovers of interrupted writes.
void prune_checkpoints(const std::filesystem::path& checkpoints_dir, int64_t keep, int64_t keep_every);

// trainer.yaml text <-> state (strictly validated when read; the reader is fuzzed).
std::string trainer_state_yaml(const TrainerState& s);
TrainerState parse_trainer_state(const std::string& yaml, const std::string& origin);

}  // namespace ponder::train
