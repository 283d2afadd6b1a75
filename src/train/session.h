// Everything `ponder train` and `ponder resume` set up before the loop: device and precision, the
// model, the data source and the evaluation, from a validated recipe.
#pragma once

#include <filesystem>
#include <string>

#include "data/dataset.h"
#include "data/tasks/task.h"
#include "io/recipe.h"
#include "train/trainer.h"

namespace ponder::train {

// runtime.device: auto picks a GPU when one is visible: the one of this rank's local rank.
Device resolve_device(const io::Recipe& recipe, int local_rank = 0);
// runtime.precision: auto is bf16 on a GPU and f32 on a CPU.
DType resolve_precision(const io::Recipe& recipe, Device device);

// batch.micro_tokens: auto and runtime.recompute: auto, chosen for the device's available memory
// (train::choose_by_memory); every rank takes the choice for the rank with the least, so that all
// run the same micro-batches. Returns the line that says what was chosen, or nothing when the
// recipe fixed both.
std::string resolve_by_memory(io::Recipe& recipe, Device device, dist::Communicator& comm);

// The data a recipe names, opened and checked against its model before anything is built: the task
// (data.task, read by the character tokenizer), or the training shards and the evaluation shards.
// Throws ConfigError when the model's vocabulary is smaller than the data's, or when the evaluation
// shards come from another tokenizer than the training shards.
struct RunData {
  std::shared_ptr<const data::Task> task;
  std::shared_ptr<const data::Dataset> train, eval;
};
RunData open_data(const io::Recipe& recipe);

// Builds the model, data and evaluation of a run for one rank of `comm` (a single process when
// null; a GPU communicator also fixes the device), resolving batch.micro_tokens: auto. Writes
// nothing: the trainer made from it creates run_dir's files, so input rejected here touches no run.
TrainContext make_context(const io::Recipe& recipe, const std::filesystem::path& run_dir,
                          std::shared_ptr<dist::Communicator> comm = nullptr);

}  // namespace ponder::train
