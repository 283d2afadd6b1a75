// Loading models for generation from exports, runs and checkpoints, and the prompts they read.
#include "train/inference.h"

#include <gtest/gtest.h>

#include <fstream>
#include <functional>

#include "io/errors.h"
#include "io/safetensors.h"
#include "models/sst/sst.h"
#include "ops/ops.h"
#include "support/python.h"
#include "support/test_util.h"
#include "train/checkpoint.h"
#include "train/export.h"
#include "train/family.h"

namespace ponder::train {
namespace {
namespace fs = std::filesystem;
using ponder::testing::all_close;
using ponder::testing::error_message;

const char* kBaseline = R"(model: {family: transformer, vocab_size: 100, dim: 32, layers: 2, heads: 4, kv_heads: 2, ffn_hidden: 64}
data: {task: reverse, seq_len: 48}
train: {steps: 1}
batch: {global_tokens: 96}
runtime: {device: cpu}
)";

const char* kHrmText = R"(model: {family: hrm_text, vocab_size: 100, dim: 32, layers_per_stack: 1, heads: 2, ffn_hidden: 64, H_cycles: 2, L_cycles: 2}
data: {task: reverse, seq_len: 40}
train: {steps: 1}
batch: {global_tokens: 80}
runtime: {device: cpu}
)";

const char* kAttractor = R"(model: {family: attractor, vocab_size: 100, dim: 32, heads: 2, ffn_hidden: 64, n_backbone_layers: 1, n_fp_blocks: 1, attention: prefix_lm, gamma_init: 0.25, gamma_max: 0.5, solver: picard, tol: 1.0e-4, max_iter: 12}
data: {task: reverse, seq_len: 40}
train: {steps: 1}
batch: {global_tokens: 80}
runtime: {device: cpu}
)";

const char* kSst = R"(model: {family: sst, vocab_size: 100, dim: 32, layers: 2, heads: 2, ffn_hidden: 64, alpha_min: 0.2, alpha_max: 0.6, deliberation: 2, lora: {rank: 2, targets: [q_proj, down_proj]}}
data: {task: reverse, seq_len: 40}
train: {steps: 1}
batch: {global_tokens: 80}
runtime: {device: cpu}
)";

// A run directory holding one checkpoint of a freshly initialised model and the character tokenizer.
struct TrainedRun {
  fs::path dir;
  io::Recipe recipe;
  std::shared_ptr<models::LanguageModel> model;
};

// `adjust` may change the weights first (stand in for training).
TrainedRun make_run(const fs::path& dir, const char* recipe_text, const std::vector<std::string>& overrides = {},
             bool ema = false, const std::function<void(models::LanguageModel&)>& adjust = nullptr) {
  TrainedRun run{dir, io::parse_recipe(recipe_text, "r.yaml", overrides), nullptr};
  run.model = build_model(run.recipe.model, 7);
  if (adjust) adjust(*run.model);
  CheckpointContents contents;
  for (auto& [name, t] : run.model->state_dict()) {
    contents.model.emplace_back(name, t);
    if (ema) contents.ema.emplace_back(name, t * 0.5);
  }
  contents.recipe_yaml = run.recipe.resolved_yaml;
  write_checkpoint(dir / "checkpoints", contents);
  fs::create_directories(dir / "tokenizer");
  data::CharTokenizer().save(dir / "tokenizer");
  return run;
}

// The next-token logits after `ids` read as a prompt.
Tensor logits_after(models::LanguageModel& model, const std::vector<double>& ids, AttentionMask mask) {
  NoGrad no_grad;
  models::DecodeCache cache(mask);
  return model.next_token_logits(tensor(ids, {int64_t(ids.size())}, {.dtype = DType::i64}), cache);
}

const std::vector<double> kIds = {1, 3, 40, 41, 42, 43, 44, 4};

TEST(Inference, ExportsAndRunsLoadTheModelTheyHold) {
  const fs::path scratch = ponder::testing::scratch_dir("inference_load");
  struct Case {
    const char* recipe;
    std::vector<std::string> overrides;
    AttentionMask mask;
  };
  const Case cases[] = {{kBaseline, {}, AttentionMask::prefix_lm},
                        {kBaseline, {"data.mask=causal"}, AttentionMask::causal},
                        {kHrmText, {}, AttentionMask::prefix_lm},
                        {kAttractor, {}, AttentionMask::prefix_lm},
                        {kAttractor, {"model.attention=causal"}, AttentionMask::causal}};
  int n = 0;
  for (const Case& c : cases) {
    const fs::path dir = scratch / std::to_string(n++);
    const TrainedRun run = make_run(dir / "run", c.recipe, c.overrides);
    // Small shards exercise the sharded layout.
    export_model(dir / "run", dir / "export", {.dtype = DType::f32, .shard_bytes = 8192});
    ASSERT_TRUE(fs::exists(dir / "export" / "model.safetensors.index.json"));
    const Tensor expected = logits_after(*run.model, kIds, c.mask);
    for (const fs::path& source : {dir / "export", dir / "run", resolve_checkpoint(dir / "run")}) {
      const InferenceModel m = load_for_inference(source, {});
      EXPECT_EQ(m.model->family(), run.model->family());
      EXPECT_EQ(m.prompt_mask, c.mask) << source;
      EXPECT_EQ(m.context, run.recipe.data.seq_len) << source;
      EXPECT_EQ(m.tokenizer->id(), data::CharTokenizer().id());
      EXPECT_FALSE(m.model->is_training());
      EXPECT_TRUE(all_close(logits_after(*m.model, kIds, m.prompt_mask), expected, 0, 0)) << source;
    }
  }
  fs::remove_all(scratch);
}

// The export is a LlamaForCausalLM (the adapters merged, which transformers needs) plus
// blend_theta and the "sst" section, and ponder runs it as the SST it was, deliberation included.
TEST(Inference, AnSstExportIsALlamaWithMergedAdaptersThatPonderRunsAsTheSst) {
  const fs::path dir = ponder::testing::scratch_dir("inference_sst");
  uint64_t seed = 20;
  const TrainedRun run = make_run(dir / "run", kSst, {}, false, [&](models::LanguageModel& m) {
    NoGrad no_grad;  // trained-looking blends and adapters: fresh ones (lora_B = 0) would hide a lost merge
    for (auto& [name, p] : m.named_parameters()) {
      if (models::Sst::is_sst_parameter(name)) copy_(p, ponder::testing::random_tensor(p.shape(), seed++) * 0.5);
    }
  });
  export_model(dir / "run", dir / "export", {.dtype = DType::f32});
  std::ifstream in(dir / "export" / "config.json");
  const nlohmann::json config = nlohmann::json::parse(in);
  EXPECT_EQ(config["architectures"][0], "LlamaForCausalLM");
  EXPECT_EQ(config["sst"], (nlohmann::json{{"alpha_min", 0.2}, {"alpha_max", 0.6}, {"state", "ffn"},
                                           {"deliberation", 2}, {"deliberation_tol", 0.0}}));
  const auto weights = io::load_safetensors(dir / "export" / "model.safetensors").tensors;
  std::map<std::string, Tensor> trained;
  for (auto& [name, t] : run.model->state_dict()) trained[name] = t;
  for (const auto& [name, t] : weights) EXPECT_EQ(name.find("lora"), std::string::npos) << name;
  EXPECT_TRUE(all_close(weights.at("blend_theta"), trained.at("blend_theta"), 0, 0));
  for (const std::string proj : {"model.layers.1.self_attn.q_proj", "model.layers.0.mlp.down_proj"}) {
    // W + (alpha / rank) B A, with recipe's default lora alpha 16 over rank 2.
    const Tensor merged = trained.at(proj + ".weight") +
                          matmul(trained.at(proj + ".lora_B.weight"), trained.at(proj + ".lora_A.weight")) * 8.0;
    EXPECT_TRUE(all_close(weights.at(proj + ".weight"), merged, 1e-5, 1e-6)) << proj;
  }
  EXPECT_TRUE(all_close(weights.at("model.layers.1.self_attn.k_proj.weight"),
                        trained.at("model.layers.1.self_attn.k_proj.weight"), 0, 0));  // not adapted
  const InferenceModel m = load_for_inference(dir / "export", {});
  ASSERT_EQ(m.model->family(), "sst");
  EXPECT_EQ(static_cast<const models::Sst&>(*m.model).sst_config().deliberation, 2);
  const Tensor expected = logits_after(*run.model, kIds, AttentionMask::prefix_lm);  // deliberating twice
  EXPECT_TRUE(all_close(logits_after(*m.model, kIds, m.prompt_mask), expected, 1e-4, 1e-5));
  m.model->set_eval_depth("1");
  EXPECT_FALSE(all_close(logits_after(*m.model, kIds, m.prompt_mask), expected, 1e-4, 1e-5));  // depth matters here
  fs::remove_all(dir);
}

TEST(Inference, ABf16ExportLoadsIntoAnF32ModelOnTheCpu) {
  const fs::path dir = ponder::testing::scratch_dir("inference_bf16");
  const TrainedRun run = make_run(dir / "run", kHrmText);
  export_model(dir / "run", dir / "export", {.dtype = DType::bf16});
  const InferenceModel m = load_for_inference(dir / "export", {});
  EXPECT_EQ(m.dtype, DType::f32);
  EXPECT_LT(ponder::testing::relative_error(logits_after(*m.model, kIds, m.prompt_mask),
                                            logits_after(*run.model, kIds, m.prompt_mask)),
            2e-2);
  fs::remove_all(dir);
}

TEST(Inference, EmaWeightsComeFromRunsOnly) {
  const fs::path dir = ponder::testing::scratch_dir("inference_ema");
  const TrainedRun run = make_run(dir / "run", kBaseline, {}, /*ema=*/true);
  const Tensor raw = run.model->state_dict().front().second;
  auto first_weight = [](const InferenceModel& m) { return m.model->state_dict().front().second; };
  EXPECT_TRUE(all_close(first_weight(load_for_inference(dir / "run", {})), raw, 0, 0));
  EXPECT_TRUE(all_close(first_weight(load_for_inference(dir / "run", {.ema = true})), raw * 0.5, 0, 0));
  export_model(dir / "run", dir / "export", {.dtype = DType::f32});
  EXPECT_NE(error_message<ValueError>([&] { load_for_inference(dir / "export", {.ema = true}); }).find("is an export"),
            std::string::npos);
  make_run(dir / "plain", kBaseline);
  EXPECT_NE(error_message<ValueError>([&] { load_for_inference(dir / "plain", {.ema = true}); }).find("no EMA weights"),
            std::string::npos);
  fs::remove_all(dir);
}

void write_text(const fs::path& path, const std::string& text) { std::ofstream(path) << text; }

// A checkpoint whose tensors are not its recipe's model (one renamed, one cut short) is refused,
// naming the tensor, before anything is written.
TEST(Inference, ExportRefusesWeightsThatAreNotTheRecipesModel) {
  const fs::path dir = ponder::testing::scratch_dir("inference_mismatch");
  const io::Recipe recipe = io::parse_recipe(kBaseline, "r.yaml");
  const auto state = build_model(recipe.model, 7)->state_dict();
  const std::string first = state.front().first;
  auto checkpoint_with = [&](const std::string& run, const std::function<void(nn::NamedTensors&)>& damage) {
    CheckpointContents contents;
    contents.model = state;
    contents.recipe_yaml = recipe.resolved_yaml;
    damage(contents.model);
    write_checkpoint(dir / run / "checkpoints", contents);
    return dir / run;
  };
  const fs::path renamed = checkpoint_with("renamed", [](nn::NamedTensors& t) { t.front().first += "_old"; });
  const fs::path cut = checkpoint_with("cut", [](nn::NamedTensors& t) { t.front().second = t.front().second.narrow(0, 0, 1); });
  for (const auto& [run, what] : {std::pair{renamed, "missing tensor \"" + first + "\""},
                                  std::pair{cut, "\"" + first + "\" has shape"}}) {
    const std::string message = error_message<io::FormatError>([&] { export_model(run, dir / "export", {}); });
    EXPECT_NE(message.find("the weights are not the model its recipe describes"), std::string::npos) << message;
    EXPECT_NE(message.find(what), std::string::npos) << message;
    EXPECT_FALSE(fs::exists(dir / "export"));
  }
  fs::remove_all(dir);
}

TEST(Inference, MissingOrBrokenFilesAreNamed) {
  const fs::path dir = ponder::testing::scratch_dir("inference_missing");
  make_run(dir / "run", kBaseline);
  export_model(dir / "run", dir / "export", {.dtype = DType::f32});
  auto broken = [&](const std::string& name, const std::function<void(const fs::path&)>& damage) {
    const fs::path copy = dir / name;
    fs::copy(dir / "export", copy);
    damage(copy);
    return copy;
  };
  auto problem = [](const fs::path& source) {
    try {
      load_for_inference(source, {});
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("loaded");
  };
  EXPECT_NE(problem(dir / "nowhere").find("no such model"), std::string::npos);
  EXPECT_NE(problem(broken("no_config", [](const fs::path& d) { fs::remove(d / "config.json"); })).find("config.json: missing"),
            std::string::npos);
  EXPECT_NE(problem(broken("no_weights", [](const fs::path& d) { fs::remove(d / "model.safetensors"); }))
                .find("no model.safetensors"),
            std::string::npos);
  EXPECT_NE(problem(broken("no_tokenizer", [](const fs::path& d) { fs::remove(d / "char_tokenizer.json"); }))
                .find("no tokenizer"),
            std::string::npos);
  EXPECT_NE(problem(broken("bad_json", [](const fs::path& d) { write_text(d / "config.json", "{oops"); }))
                .find("not a JSON object"),
            std::string::npos);
  auto edited = [&](const std::string& name, const std::function<void(nlohmann::json&)>& edit) {
    return broken(name, [&](const fs::path& d) {
      nlohmann::json config = nlohmann::json::parse(std::ifstream(d / "config.json"));
      edit(config);
      write_text(d / "config.json", config.dump());
    });
  };
  EXPECT_NE(problem(edited("gpt2", [](nlohmann::json& c) { c["model_type"] = "gpt2"; })).find("model_type \"gpt2\""),
            std::string::npos);
  EXPECT_NE(problem(edited("no_width", [](nlohmann::json& c) { c.erase("hidden_size"); })).find("missing \"hidden_size\""),
            std::string::npos);
  EXPECT_NE(problem(edited("gelu", [](nlohmann::json& c) { c["hidden_act"] = "gelu"; })).find("\"hidden_act\" is \"gelu\""),
            std::string::npos);
  EXPECT_NE(problem(edited("narrow", [](nlohmann::json& c) { c["hidden_size"] = 64; })).find("shape"), std::string::npos);
  fs::remove_all(dir);
}

TEST(Inference, PromptsFollowTheTrainingLayoutAndFitTheContext) {
  const fs::path dir = ponder::testing::scratch_dir("inference_prompt");
  make_run(dir / "run", kBaseline);  // context 48
  const InferenceModel m = load_for_inference(dir / "run", {});
  const std::vector<int32_t> abc = {1, 3, 'a' - 27, 'b' - 27, 'c' - 27, 4};  // bos, <inst>, "abc", <resp>
  EXPECT_EQ(encode_prompt(m, "abc", 8, false), abc);
  EXPECT_EQ(encode_prompt(m, "abc", 8, true), abc);
  const std::string long_text(60, 'x');
  EXPECT_NE(error_message<ValueError>([&] { encode_prompt(m, long_text, 8, false); }).find("context of 48 tokens"),
            std::string::npos);
  // Truncation keeps the framing and the end of the text, leaving room for the new tokens.
  std::string text = long_text + "yz";
  const std::vector<int32_t> cut = encode_prompt(m, text, 8, true);
  ASSERT_EQ(cut.size(), size_t(48 - 8));
  EXPECT_EQ(std::vector<int32_t>(cut.begin(), cut.begin() + 2), std::vector<int32_t>({1, 3}));
  EXPECT_EQ(std::vector<int32_t>(cut.end() - 3, cut.end()), std::vector<int32_t>({'y' - 27, 'z' - 27, 4}));
  EXPECT_THROW(encode_prompt(m, text, 47, true), ValueError);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace ponder::train
