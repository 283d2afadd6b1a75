// Everything `ponder train` and `ponder resume` set up before the loop: device and precision, the
// model, the data source and the evaluation, from a validated recipe.
#pragma once

#include <filesystem>

#include "io/recipe.h"
#include "train/trainer.h"

namespace ponder::train {

// runtime.device: auto picks a GPU when one is visible: the one of this rank's local rank.
Device resolve_device(const io::Recipe& recipe, int local_rank = 0);
// runtime.precision: auto is bf16 on a GPU and f32 on a CPU.
DType resolve_precision(const io::Recipe& recipe, Device device);

// Builds the model, data and evaluation of a run for one rank of `comm` (a single process when
// null; a GPU communicator also fixes the device). Rank 0 saves the tokenizer into
// run_dir/tokenizer so exports can ship it.
TrainContext make_context(const io::Recipe& recipe, const std::filesystem::path& run_dir,
                          std::shared_ptr<dist::Communicator> comm = nullptr);

}  // namespace ponder::train
