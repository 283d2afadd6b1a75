// Co-training onto a trained baseline: an SST recipe's model.backbone names a ponder run or
// checkpoint of the transformer family, or a LlamaForCausalLM export directory (config.json +
// model.safetensors, what `ponder export` writes), whose weights replace the SST's backbone
// tensors before training. blend_theta and the LoRA adapters keep their initialisation.
#pragma once

#include "io/recipe.h"
#include "models/language_model.h"

namespace ponder::train {

// Does nothing unless the recipe is an SST with model.backbone set. io::ConfigError naming
// model.backbone when the backbone's configuration or a tensor's shape differs from the recipe's
// model; io errors when the directory holds neither a run, a checkpoint nor an export.
void init_backbone(models::LanguageModel& model, const io::Recipe& recipe);

}  // namespace ponder::train
