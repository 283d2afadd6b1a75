// Loading a trained model for generation, from
//   an export directory (what `ponder export` writes: config.json, model.safetensors or its
//     shards, the tokenizer files), or
//   a run directory (its newest complete checkpoint and the run's tokenizer), or one checkpoint
//     directory of a run.
// Missing or unreadable files are io errors naming the file.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/tokenizer.h"
#include "io/recipe.h"
#include "models/language_model.h"

namespace ponder::train {

struct InferenceOptions {
  Device device = Device::cpu();
  bool ema = false;  // a checkpoint's EMA weights (an export holds the weights it was exported with)
};

struct InferenceModel {
  std::shared_ptr<models::LanguageModel> model;  // on the device, in eval mode
  std::unique_ptr<data::Tokenizer> tokenizer;
  AttentionMask prompt_mask = AttentionMask::prefix_lm;  // how training read instructions
  int64_t context = 0;            // tokens per training row: the longest sequence it has seen
  DType dtype = DType::f32;       // f32 on the CPU; on a GPU the export's or the recipe's precision
  std::filesystem::path weights;  // the file or checkpoint the weights came from
};

// The weights of an export directory: model.safetensors, or the shards its index lists.
std::map<std::string, Tensor> export_weights(const std::filesystem::path& dir);

InferenceModel load_for_inference(const std::filesystem::path& dir, const InferenceOptions& options);

// An instruction as a prompt in the training layout ([bos] [inst] text [resp], data/prepare.h).
// A prompt that leaves no room in the context to generate is a ValueError, unless `truncate`: then
// the start of its text is dropped so that the prompt and max_new_tokens fit.
std::vector<int32_t> encode_prompt(const InferenceModel& model, const std::string& instruction, int64_t max_new_tokens,
                                   bool truncate);

// The model configuration a config.json written by export describes (the inverse of hf_config);
// io::FormatError naming `origin` and the key for a missing key, a wrong type or an architecture
// ponder does not build.
io::ModelConfig model_config_from_hf(const nlohmann::json& config, const std::string& origin);

}  // namespace ponder::train
