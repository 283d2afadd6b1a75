#include "train/export.h"

#include <fstream>

#include "data/hf_tokenizer.h"
#include "io/atomic_file.h"
#include "io/errors.h"
#include "io/safetensors.h"
#include "ops/cast.h"
#include "models/sst/sst.h"
#include "train/checkpoint.h"
#include "train/family.h"

namespace ponder::train {
namespace fs = std::filesystem;

namespace {

struct HfConfig {
  DType dtype;
  nlohmann::json operator()(const models::TransformerConfig& c) const {
    PONDER_CHECK(!c.attention_output_gate, ValueError,
                 "export: LlamaForCausalLM has no attention output gate; this model cannot be exported as Llama");
    const int64_t head_dim = c.head_dim ? c.head_dim : c.dim / c.heads;
    return {{"architectures", {"LlamaForCausalLM"}},
            {"model_type", "llama"},
            {"vocab_size", c.vocab_size},
            {"hidden_size", c.dim},
            {"intermediate_size", c.ffn_hidden},
            {"num_hidden_layers", c.layers},
            {"num_attention_heads", c.heads},
            {"num_key_value_heads", c.kv_heads ? c.kv_heads : c.heads},
            {"head_dim", head_dim},
            {"hidden_act", "silu"},
            {"rms_norm_eps", c.norm_eps},
            {"rope_theta", c.rope_theta},
            {"tie_word_embeddings", c.tie_embeddings},
            {"attention_bias", false},
            {"mlp_bias", false},
            {"torch_dtype", dtype == DType::bf16 ? "bfloat16" : "float32"}};
  }

  // The backbone as LlamaForCausalLM (the adapters merged) and what the state stream needs in
  // "sst": transformers runs the backbone alone and ignores blend_theta; the recurrence needs ponder.
  nlohmann::json operator()(const models::SstConfig& c) const {
    nlohmann::json config = (*this)(static_cast<const models::TransformerConfig&>(c));
    config["sst"] = {{"alpha_min", c.alpha_min},
                     {"alpha_max", c.alpha_max},
                     {"state", c.state_is_output ? "output" : "ffn"},
                     {"deliberation", c.deliberation},
                     {"deliberation_tol", c.deliberation_tol}};
    return config;
  }

  // transformers' HrmTextConfig keeps num_hidden_layers as one KV-cache slot per attention call
  // of the recurrence and the real depth of each stack in num_layers_per_stack.
  nlohmann::json operator()(const models::HrmTextConfig& c) const {
    return {{"architectures", {"HrmTextForCausalLM"}},
            {"model_type", "hrm_text"},
            {"vocab_size", c.vocab_size},
            {"hidden_size", c.dim},
            {"intermediate_size", c.resolved_ffn_hidden()},
            {"num_layers_per_stack", c.layers_per_stack},
            {"num_hidden_layers", c.layers_per_stack * c.h_cycles * (c.l_cycles + 1)},
            {"num_attention_heads", c.heads},
            {"head_dim", c.resolved_head_dim()},
            {"hidden_act", "silu"},
            {"rms_norm_eps", c.norm_eps},
            {"rope_parameters", {{"rope_type", "default"}, {"rope_theta", c.rope_theta}}},
            {"H_cycles", c.h_cycles},
            {"L_cycles", c.l_cycles},
            {"embedding_scale", c.resolved_embedding_scale()},
            {"initializer_range", 1.0 / c.resolved_embedding_scale()},
            {"tie_word_embeddings", false},
            {"attention_bias", false},
            {"mlp_bias", false},
            {"torch_dtype", dtype == DType::bf16 ? "bfloat16" : "float32"}};
  }

  // No transformers architecture exists for attractor models: ponder's own layout, with every
  // setting the forward needs (DESIGN.md §5). The weights keep their ponder parameter names.
  nlohmann::json operator()(const models::AttractorConfig& c) const {
    const char* solvers[] = {"picard", "anderson"};
    return {{"architectures", {"PonderAttractor"}},
            {"model_type", "ponder_attractor"},
            {"vocab_size", c.vocab_size},
            {"hidden_size", c.dim},
            {"num_attention_heads", c.heads},
            {"intermediate_size", c.resolved_ffn_hidden()},
            {"hidden_act", "relu2"},
            {"qk_norm", true},
            {"n_backbone_layers", c.n_backbone_layers},
            {"n_fp_blocks", c.n_fp_blocks},
            {"rms_norm_eps", c.norm_eps},
            {"rope_theta", c.rope_theta},
            {"gamma_max", c.gamma_max},
            {"logit_scale", c.logit_scale},
            {"solver", solvers[static_cast<int>(c.solver.kind)]},
            {"tol", c.solver.tol},
            {"min_iter", c.solver.min_iter},
            {"max_iter", c.solver.max_iter},
            {"anderson_m", c.solver.m},
            {"anderson_lam", c.solver.lam},
            {"anderson_beta", c.solver.beta},
            {"tie_word_embeddings", true},
            {"torch_dtype", dtype == DType::bf16 ? "bfloat16" : "float32"}};
  }
};

// The weights to export: the checkpoint's, its EMA ones where asked for, and an SST's LoRA
// adapters folded into their projections. They are loaded into the model the checkpoint's recipe
// describes, so that a checkpoint whose tensors are not that model's (a missing, renamed or
// reshaped tensor) is refused here rather than by whatever loads the export.
std::map<std::string, Tensor> weights_to_export(const LoadedCheckpoint& c, const io::Recipe& recipe, bool ema,
                                                const fs::path& checkpoint) {
  std::map<std::string, Tensor> weights = c.model;
  if (ema) {
    for (const auto& [name, t] : c.ema) weights[name] = t;
  }
  const std::shared_ptr<models::LanguageModel> model = build_model(recipe.model, recipe.runtime.seed);
  try {
    model->load_state_dict(weights);
  } catch (const Error& e) {
    throw io::FormatError(checkpoint.string() + ": the weights are not the model its recipe describes: " + e.what());
  }
  auto* sst = dynamic_cast<models::Sst*>(model.get());
  if (!sst || sst->sst_config().lora_rank == 0) return weights;
  sst->merge_adapters();
  weights.clear();
  for (auto& [name, t] : sst->state_dict()) weights[name] = t;
  return weights;
}

void write_json(const fs::path& path, const nlohmann::json& j) {
  std::string text = j.dump(2) + "\n";
  io::AtomicFile f(path);
  f.write(text.data(), text.size());
  f.commit();
}

}  // namespace

std::unique_ptr<data::Tokenizer> run_tokenizer(const fs::path& checkpoint) {
  const fs::path dir = checkpoint.parent_path().parent_path() / "tokenizer";
  return fs::is_directory(dir) ? data::tokenizer_beside(dir) : nullptr;
}

nlohmann::json hf_config(const io::Recipe& recipe, DType dtype) {
  nlohmann::json config = std::visit(HfConfig{dtype}, recipe.model);
  config["max_position_embeddings"] = recipe.data.seq_len;  // the context it was trained on
  // HRM-Text's own key; for the baseline transformers ignores it (LlamaForCausalLM is causal), but
  // ponder generate reads the prompt as it was trained to.
  config["prefix_lm"] = recipe.data.attention_mask() == AttentionMask::prefix_lm;
  return config;
}

ExportResult export_model(const fs::path& source, const fs::path& out_dir, const ExportOptions& o) {
  PONDER_CHECK(o.dtype == DType::bf16 || o.dtype == DType::f32, ValueError, "export: --dtype must be bf16 or f32");
  // Nothing there is overwritten: an export writes several files (weights, config, tokenizer).
  PONDER_CHECK(!fs::exists(out_dir) || (fs::is_directory(out_dir) && fs::is_empty(out_dir)), io::IoError,
               out_dir.string(), ": already exists and is not an empty directory; export into a new or empty one");
  ExportResult result;
  result.checkpoint = resolve_checkpoint(source);
  LoadedCheckpoint c = read_checkpoint(result.checkpoint);
  io::Recipe recipe = io::parse_recipe(c.recipe_yaml, (result.checkpoint / "recipe.yaml").string());
  nlohmann::json config = hf_config(recipe, o.dtype);  // refuses unexportable models before writing
  PONDER_CHECK(!o.ema || !c.ema.empty(), ValueError, "export: --ema asked for, but ", result.checkpoint.string(),
               " has no EMA weights (the recipe kept none)");
  // The tokenizer is described before anything is written, so one transformers cannot load is refused.
  std::unique_ptr<data::Tokenizer> tokenizer = run_tokenizer(result.checkpoint);
  nlohmann::json hf_tokenizer;
  if (tokenizer) {
    PONDER_CHECK(tokenizer->vocab_size() <= config["vocab_size"].get<int64_t>(), ValueError, "export: the run's tokenizer has ",
                 tokenizer->vocab_size(), " tokens, more than the model's vocab_size ", config["vocab_size"].get<int64_t>());
    hf_tokenizer = data::hf_tokenizer_json(*tokenizer);
    config["bos_token_id"] = tokenizer->bos();
    config["eos_token_id"] = tokenizer->eos();
    config["pad_token_id"] = tokenizer->pad();
  }

  const std::map<std::string, Tensor> weights = weights_to_export(c, recipe, o.ema, result.checkpoint);

  fs::create_directories(out_dir);
  // Shards of at most shard_bytes, in name order; one shard is written as model.safetensors.
  std::vector<io::NamedTensors> shards(1);
  int64_t bytes = 0;
  for (const auto& [name, t] : weights) {
    Tensor w = t.to(o.dtype);
    const int64_t size = w.numel() * int64_t(element_size(o.dtype));
    if (bytes > 0 && bytes + size > o.shard_bytes) {
      shards.emplace_back();
      bytes = 0;
    }
    shards.back().emplace_back(name, w);
    bytes += size;
    result.parameters += w.numel();
  }
  result.shards = static_cast<int>(shards.size());
  if (shards.size() == 1) {
    io::save_safetensors(out_dir / "model.safetensors", shards[0]);
  } else {
    nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", nlohmann::json::object()}};
    int64_t total = 0;
    for (size_t s = 0; s < shards.size(); ++s) {
      char name[64];
      std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", s + 1, shards.size());
      io::save_safetensors(out_dir / name, shards[s]);
      for (const auto& [n, t] : shards[s]) {
        index["weight_map"][n] = name;
        total += t.numel() * int64_t(element_size(o.dtype));
      }
    }
    index["metadata"]["total_size"] = total;
    write_json(out_dir / "model.safetensors.index.json", index);
  }
  if (tokenizer) {
    tokenizer->save(out_dir);
    write_json(out_dir / "tokenizer.json", hf_tokenizer);
    write_json(out_dir / "tokenizer_config.json", data::hf_tokenizer_config(*tokenizer, recipe.data.seq_len));
    result.tokenizer_id = tokenizer->id();
  }
  write_json(out_dir / "config.json", config);
  return result;
}

}  // namespace ponder::train
