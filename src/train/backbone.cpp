#include "train/backbone.h"

#include <fstream>

#include "io/errors.h"
#include "models/sst/sst.h"
#include "train/checkpoint.h"
#include "train/inference.h"

namespace ponder::train {
namespace fs = std::filesystem;

namespace {

struct Backbone {
  io::ModelConfig config;
  std::map<std::string, Tensor> weights;
};

Backbone read_backbone(const fs::path& dir) {
  if (fs::exists(dir / "config.json")) {
    std::ifstream in(dir / "config.json");
    const nlohmann::json config = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    PONDER_CHECK(config.is_object(), io::FormatError, (dir / "config.json").string(), ": not a JSON object");
    return {model_config_from_hf(config, (dir / "config.json").string()), export_weights(dir)};
  }
  PONDER_CHECK(fs::is_directory(dir), io::IoError, "model.backbone: ", dir.string(), " does not exist");
  PONDER_CHECK(fs::exists(dir / "checkpoints") || fs::exists(dir / "COMPLETE"), io::IoError, "model.backbone: ",
               dir.string(), " is neither a ponder run or checkpoint nor an export directory (config.json)");
  LoadedCheckpoint c = read_checkpoint(resolve_checkpoint(dir));
  return {io::parse_recipe(c.recipe_yaml, (c.dir / "recipe.yaml").string()).model, std::move(c.model)};
}

// The recipe's first architecture field that the backbone does not share.
void check_same_architecture(const models::TransformerConfig& want, const io::ModelConfig& have, const fs::path& dir) {
  const auto* b = std::get_if<models::TransformerConfig>(&have);
  PONDER_CHECK(b && !std::holds_alternative<models::SstConfig>(have), io::ConfigError, "model.backbone: ",
               dir.string(), " is not a transformer-family (LlamaForCausalLM) model");
  auto kv = [](const models::TransformerConfig& c) { return c.kv_heads ? c.kv_heads : c.heads; };
  auto hd = [](const models::TransformerConfig& c) { return c.head_dim ? c.head_dim : c.dim / c.heads; };
  const std::vector<std::tuple<const char*, double, double>> fields = {
      {"vocab_size", want.vocab_size, b->vocab_size}, {"dim", want.dim, b->dim},
      {"layers", want.layers, b->layers},             {"heads", want.heads, b->heads},
      {"kv_heads", kv(want), kv(*b)},                  {"head_dim", hd(want), hd(*b)},
      {"ffn_hidden", want.ffn_hidden, b->ffn_hidden}, {"norm_eps", want.norm_eps, b->norm_eps},
      {"rope_theta", want.rope_theta, b->rope_theta}, {"tie_embeddings", want.tie_embeddings, b->tie_embeddings},
      {"attention_output_gate", want.attention_output_gate, b->attention_output_gate}};
  for (const auto& [key, recipe_value, backbone_value] : fields) {
    PONDER_CHECK(recipe_value == backbone_value, io::ConfigError, "model.", key, ": the recipe says ", recipe_value,
                 " but the backbone ", dir.string(), " has ", backbone_value);
  }
}

}  // namespace

void init_backbone(models::LanguageModel& model, const io::Recipe& recipe) {
  const auto* c = std::get_if<models::SstConfig>(&recipe.model);
  if (!c || c->backbone.empty()) return;
  const fs::path dir = c->backbone;
  Backbone backbone = read_backbone(dir);
  check_same_architecture(*c, backbone.config, dir);
  std::map<std::string, Tensor> state;
  for (const auto& [name, t] : model.state_dict()) {
    if (models::Sst::is_sst_parameter(name)) continue;
    auto it = backbone.weights.find(name);
    PONDER_CHECK(it != backbone.weights.end(), io::ConfigError, "model.backbone: ", dir.string(), " has no tensor ", name);
    PONDER_CHECK(it->second.shape() == t.shape(), io::ConfigError, "model.backbone: ", name, " is ",
                 it->second.shape(), " in ", dir.string(), " but ", t.shape(), " in the recipe's model");
    state[name] = it->second;
  }
  model.load_state_dict(state, /*strict=*/false);
}

}  // namespace ponder::train
