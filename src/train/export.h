// Export: weights and configuration in the layout other tools load. The baseline exports as
// transformers' LlamaForCausalLM (model.safetensors + config.json + tokenizer files), so
//   AutoModelForCausalLM.from_pretrained(OUT_DIR), AutoTokenizer.from_pretrained(OUT_DIR)
// load it. Weights above 5 GB are sharded with a model.safetensors.index.json.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "data/tokenizer.h"
#include "io/recipe.h"
#include "tensor/dtype.h"

namespace ponder::train {

struct ExportOptions {
  bool ema = false;               // export the EMA weights instead of the raw ones
  DType dtype = DType::bf16;      // bf16 or f32
  int64_t shard_bytes = int64_t(5) << 30;
};

struct ExportResult {
  std::filesystem::path checkpoint;  // where the weights came from
  int64_t parameters = 0;
  int shards = 1;
  std::string tokenizer_id;  // of the tokenizer shipped; empty when the run saved none
};

// `source` is a run directory (its newest complete checkpoint is used) or a checkpoint directory.
// The output directory must not already hold an export. The run's tokenizer (RUN_DIR/tokenizer)
// is shipped as ponder's files plus tokenizer.json and tokenizer_config.json for transformers'
// AutoTokenizer (data/hf_tokenizer.h), and config.json gets its bos/eos/pad ids.
ExportResult export_model(const std::filesystem::path& source, const std::filesystem::path& out_dir,
                          const ExportOptions& options);

// config.json for a family's configuration (the architecture transformers instantiates), with
// the context the recipe trained on (max_position_embeddings) and its prompt mask (prefix_lm).
nlohmann::json hf_config(const io::Recipe& recipe, DType dtype);

// The tokenizer the run of `checkpoint` saved (RUN_DIR/tokenizer, beside checkpoints/), or null
// when it saved none.
std::unique_ptr<data::Tokenizer> run_tokenizer(const std::filesystem::path& checkpoint);

}  // namespace ponder::train
