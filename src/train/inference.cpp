#include "train/inference.h"

#include <algorithm>
#include <fstream>
#include <set>

#include "data/prepare.h"
#include "io/errors.h"
#include "io/safetensors.h"
#include "train/checkpoint.h"
#include "train/export.h"
#include "train/family.h"
#include "train/session.h"

namespace ponder::train {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A typed value of config.json.
struct ConfigFields {
  const json& config;
  const std::string& origin;

  template <class T>
  T get(const char* key) const {
    auto it = config.find(key);
    PONDER_CHECK(it != config.end(), io::FormatError, origin, ": missing \"", key, "\"");
    try {
      return it->get<T>();
    } catch (const json::exception&) {
      fail<io::FormatError>(origin, ": \"", key, "\" has the wrong type (", it->dump(), ")");
    }
  }
  void expect(const char* key, const json& value) const {
    PONDER_CHECK(config.value(key, value) == value, io::FormatError, origin, ": \"", key, "\" is ",
                 config[key].dump(), "; ponder builds only ", value.dump());
  }
};

models::TransformerConfig llama_config(const ConfigFields& f) {
  f.expect("hidden_act", "silu");
  f.expect("attention_bias", false);
  f.expect("mlp_bias", false);
  return {.vocab_size = f.get<int64_t>("vocab_size"),
          .dim = f.get<int64_t>("hidden_size"),
          .layers = f.get<int64_t>("num_hidden_layers"),
          .heads = f.get<int64_t>("num_attention_heads"),
          .kv_heads = f.get<int64_t>("num_key_value_heads"),
          .head_dim = f.get<int64_t>("head_dim"),
          .ffn_hidden = f.get<int64_t>("intermediate_size"),
          .norm_eps = f.get<double>("rms_norm_eps"),
          .rope_theta = f.get<double>("rope_theta"),
          .tie_embeddings = f.get<bool>("tie_word_embeddings")};
}

// An SST export (train/export.cpp): the merged LlamaForCausalLM backbone, no adapters, and the
// state stream's settings from the "sst" section.
models::SstConfig sst_config(const ConfigFields& f) {
  models::SstConfig c;
  static_cast<models::TransformerConfig&>(c) = llama_config(f);
  const json section = f.get<json>("sst");
  const std::string origin = f.origin + " (sst)";
  const ConfigFields sst{section, origin};
  const std::string state = sst.get<std::string>("state");
  PONDER_CHECK(state == "ffn" || state == "output", io::FormatError, origin, ": \"state\" is \"", state,
               "\"; ponder builds \"ffn\" or \"output\"");
  c.alpha_min = sst.get<double>("alpha_min");
  c.alpha_max = sst.get<double>("alpha_max");
  c.state_is_output = state == "output";
  c.deliberation = sst.get<int64_t>("deliberation");
  c.deliberation_tol = sst.get<double>("deliberation_tol");
  if (auto problem = models::find_problem(c)) fail<io::FormatError>(origin, ": \"", problem->key, "\": ", problem->message);
  return c;
}

models::HrmTextConfig hrm_text_config(const ConfigFields& f) {
  f.expect("hidden_act", "silu");
  f.expect("attention_bias", false);
  f.expect("mlp_bias", false);
  const json rope = f.get<json>("rope_parameters");
  const ConfigFields rope_fields{rope, f.origin};
  rope_fields.expect("rope_type", "default");
  return {.vocab_size = f.get<int64_t>("vocab_size"),
          .dim = f.get<int64_t>("hidden_size"),
          .layers_per_stack = f.get<int64_t>("num_layers_per_stack"),
          .heads = f.get<int64_t>("num_attention_heads"),
          .head_dim = f.get<int64_t>("head_dim"),
          .ffn_hidden = f.get<int64_t>("intermediate_size"),
          .h_cycles = f.get<int64_t>("H_cycles"),
          .l_cycles = f.get<int64_t>("L_cycles"),
          .embedding_scale = f.get<double>("embedding_scale"),
          .norm_eps = f.get<double>("rms_norm_eps"),
          .rope_theta = rope_fields.get<double>("rope_theta"),
          .prefix_lm = f.get<bool>("prefix_lm"),
          .bp = {.bp_min = 2, .bp_max = 2}};  // the training schedule means nothing here
}

// ponder's own attractor layout (train/export.cpp); the gates' γ_init and the backward settings
// only matter for training.
models::AttractorConfig attractor_config(const ConfigFields& f) {
  f.expect("hidden_act", "relu2");
  f.expect("qk_norm", true);
  f.expect("tie_word_embeddings", true);
  models::AttractorConfig c{.vocab_size = f.get<int64_t>("vocab_size"),
                            .dim = f.get<int64_t>("hidden_size"),
                            .heads = f.get<int64_t>("num_attention_heads"),
                            .ffn_hidden = f.get<int64_t>("intermediate_size"),
                            .n_backbone_layers = f.get<int64_t>("n_backbone_layers"),
                            .n_fp_blocks = f.get<int64_t>("n_fp_blocks"),
                            .norm_eps = f.get<double>("rms_norm_eps"),
                            .rope_theta = f.get<double>("rope_theta"),
                            .attention = f.get<bool>("prefix_lm") ? AttentionMask::prefix_lm : AttentionMask::causal,
                            .gamma_init = f.get<double>("gamma_max"),
                            .gamma_max = f.get<double>("gamma_max"),
                            .logit_scale = f.get<double>("logit_scale")};
  try {
    c.solver.kind = solvers::parse_solver_kind(f.get<std::string>("solver"));
  } catch (const ValueError& e) {
    fail<io::FormatError>(f.origin, ": ", e.what());
  }
  c.solver.tol = f.get<double>("tol");
  c.solver.min_iter = f.get<int>("min_iter");
  c.solver.max_iter = f.get<int>("max_iter");
  c.solver.m = f.get<int>("anderson_m");
  c.solver.lam = f.get<double>("anderson_lam");
  c.solver.beta = f.get<double>("anderson_beta");
  return c;
}

json read_json(const fs::path& path) {
  std::ifstream in(path);
  PONDER_CHECK(in.good(), io::IoError, path.string(), ": missing (not an export directory?)");
  json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  PONDER_CHECK(j.is_object(), io::FormatError, path.string(), ": not a JSON object");
  return j;
}

std::unique_ptr<data::Tokenizer> required_tokenizer(std::unique_ptr<data::Tokenizer> tokenizer, const fs::path& where) {
  PONDER_CHECK(tokenizer != nullptr, io::IoError, where.string(),
               ": no tokenizer (tokenizer.model or char_tokenizer.json); generation needs the one the model was trained with");
  return tokenizer;
}

InferenceModel from_export(const fs::path& dir, const InferenceOptions& o) {
  PONDER_CHECK(!o.ema, ValueError, dir.string(), " is an export, which holds only the weights it was exported with; "
               "--ema applies to run directories");
  const fs::path config_path = dir / "config.json";
  const json config = read_json(config_path);
  const ConfigFields fields{config, config_path.string()};
  InferenceModel m;
  m.tokenizer = required_tokenizer(data::tokenizer_beside(dir), dir);
  m.model = build_model(model_config_from_hf(config, config_path.string()), 0);
  m.model->load_state_dict(export_weights(dir));
  m.weights = dir;
  m.context = fields.get<int64_t>("max_position_embeddings");
  m.prompt_mask = config.value("prefix_lm", false) ? AttentionMask::prefix_lm : AttentionMask::causal;
  m.dtype = o.device.is_cuda() && fields.get<std::string>("torch_dtype") == "bfloat16" ? DType::bf16 : DType::f32;
  return m;
}

InferenceModel from_run(const fs::path& dir, const InferenceOptions& o) {
  const fs::path checkpoint = resolve_checkpoint(dir);
  LoadedCheckpoint c = read_checkpoint(checkpoint);
  const io::Recipe recipe = io::parse_recipe(c.recipe_yaml, (checkpoint / "recipe.yaml").string());
  PONDER_CHECK(!o.ema || !c.ema.empty(), ValueError, "--ema asked for, but ", checkpoint.string(),
               " has no EMA weights (the recipe kept none)");
  std::map<std::string, Tensor> weights = std::move(c.model);
  if (o.ema) {
    for (auto& [name, t] : c.ema) weights[name] = t;  // buffers stay as trained
  }
  InferenceModel m;
  m.tokenizer = required_tokenizer(run_tokenizer(checkpoint), checkpoint.parent_path().parent_path());
  m.model = build_model(recipe.model, recipe.runtime.seed);
  m.model->load_state_dict(weights);
  m.weights = checkpoint;
  m.context = recipe.data.seq_len;
  m.prompt_mask = recipe.data.attention_mask();
  m.dtype = o.device.is_cuda() ? resolve_precision(recipe, o.device) : DType::f32;
  return m;
}

bool is_run_or_checkpoint(const fs::path& dir) {
  return fs::exists(dir / "COMPLETE") || fs::exists(dir / "checkpoints") || fs::exists(dir / "recipe.yaml");
}

}  // namespace

std::map<std::string, Tensor> export_weights(const fs::path& dir) {
  if (fs::exists(dir / "model.safetensors")) return io::load_safetensors(dir / "model.safetensors").tensors;
  const fs::path index_path = dir / "model.safetensors.index.json";
  PONDER_CHECK(fs::exists(index_path), io::IoError, dir.string(), ": no model.safetensors (nor a sharded index)");
  const json index = read_json(index_path);
  PONDER_CHECK(index.contains("weight_map") && index["weight_map"].is_object(), io::FormatError, index_path.string(),
               ": no weight_map object");
  std::set<std::string> shards;
  for (const auto& [name, shard] : index["weight_map"].items()) {
    PONDER_CHECK(shard.is_string(), io::FormatError, index_path.string(), ": the shard of ", name, " is not a file name");
    shards.insert(shard.get<std::string>());
  }
  std::map<std::string, Tensor> weights;
  for (const std::string& shard : shards) weights.merge(io::load_safetensors(dir / shard).tensors);
  return weights;
}

std::vector<int32_t> encode_prompt(const InferenceModel& m, const std::string& instruction, int64_t max_new_tokens,
                                   bool truncate) {
  const data::Tokenizer& tok = *m.tokenizer;
  std::vector<int32_t> ids = data::tokenize_record({.instruction = instruction, .response = "", .condition = {}}, tok).instruction;
  const int64_t length = int64_t(ids.size());
  if (!truncate) {
    PONDER_CHECK(length < m.context, ValueError, "the prompt is ", length, " tokens, which leaves no room in the model's ",
                 "context of ", m.context, " tokens; shorten it, or pass --truncate to drop its start");
    return ids;
  }
  const int64_t excess = length + max_new_tokens - m.context;
  if (excess <= 0) return ids;
  // The text lies between [bos] [inst] and the closing [resp].
  const auto text = std::find(ids.begin(), ids.end(), tok.inst()) + 1;
  PONDER_CHECK(excess <= ids.end() - 1 - text, ValueError, "--max-new-tokens ", max_new_tokens,
               " leaves no room for the prompt in the model's context of ", m.context, " tokens");
  ids.erase(text, text + excess);
  return ids;
}

io::ModelConfig model_config_from_hf(const json& config, const std::string& origin) {
  const ConfigFields fields{config, origin};
  const std::string type = fields.get<std::string>("model_type");
  if (type == "llama" && config.contains("sst")) return sst_config(fields);
  if (type == "llama") return llama_config(fields);
  if (type == "hrm_text") return hrm_text_config(fields);
  if (type == "ponder_attractor") return attractor_config(fields);
  fail<io::FormatError>(origin, ": model_type \"", type,
                        "\" is not a family ponder builds (llama, hrm_text, ponder_attractor)");
}

InferenceModel load_for_inference(const fs::path& dir, const InferenceOptions& o) {
  PONDER_CHECK(fs::is_directory(dir), io::IoError, dir.string(), ": no such model, run or checkpoint directory");
  InferenceModel m = is_run_or_checkpoint(dir) ? from_run(dir, o) : from_export(dir, o);
  m.model->to(m.dtype);
  m.model->to(o.device);
  m.model->train(false);
  return m;
}

}  // namespace ponder::train
