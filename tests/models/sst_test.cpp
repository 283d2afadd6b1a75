#include "models/sst/sst.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "data/packing.h"
#include "io/safetensors.h"
#include "models/learning.h"
#include "ops/ops.h"
#include "optim/optim.h"
#include "support/test_util.h"
#include "train/backbone.h"
#include "train/export.h"
#include "train/family.h"

namespace ponder::models {
namespace {

using testing::gradcheck;
using testing::random_tensor;

SstConfig tiny(double alpha_min = 0.015, double alpha_max = 0.10) {
  SstConfig c;
  c.vocab_size = 16;
  c.dim = 16;
  c.layers = 2;
  c.heads = 2;
  c.ffn_hidden = 32;
  c.seed = 3;
  c.alpha_min = alpha_min;
  c.alpha_max = alpha_max;
  return c;
}

// Two samples in one row: [1 2 3 | 4 5] and [6 | 7 8 9] (4 and 3 inputs), then 2 of padding.
PackedBatch two_samples() { return data::pack_rows({{{{1, 2, 3}, {4, 5}}, {{6}, {7, 8, 9}}}}, {.row_len = 9}); }

// max |a − b| over the logits of the two-pass (training) and sequential (evaluation) forwards.
double two_pass_gap(double alpha_min, double alpha_max) {
  Sst m(tiny(alpha_min, alpha_max));
  m.to(DType::f64);
  NoGrad no_grad;
  const Tensor two_pass = m.logits(two_samples());
  m.train(false);
  const Tensor sequential = m.logits(two_samples());
  return amax(abs(two_pass - sequential)).item<double>();
}

TEST(Sst, TwoPassGapShrinksLikeAlphaSquared) {
  // α = 0.03 (θ = 0, midway between α_min and α_max), then 0.015. The gap is c·α² + O(α³), so
  // halving α divides it by 4·(1 + O(α)); the O(α) relative correction is a few percent at these
  // α, so [3.5, 4.5] separates α² from α (ratio 2) and α³ (ratio 8) with room to spare.
  const double gap = two_pass_gap(0.02, 0.04), half = two_pass_gap(0.01, 0.02);
  EXPECT_GT(gap, 1e-9);  // the approximation is not exact, so the ratio measures something
  EXPECT_GT(gap / half, 3.5) << gap << " vs " << half;
  EXPECT_LT(gap / half, 4.5) << gap << " vs " << half;
}

// A small state FFN for the layer-level checks: b -> tanh(b W).
StateFfn tanh_ffn(const Tensor& w) {
  return [w](const Tensor& b) { return tanh(matmul(b, w)); };
}
Tensor alpha_of(const Tensor& theta) { return 0.1 + 0.8 * sigmoid(theta); }

const std::vector<uint8_t> kStarts = {1, 0, 0, 1, 0};
const Tensor kStartFlags = tensor({1, 0, 0, 1, 0}, {5}, {.dtype = DType::u8});

TEST(Sst, SequentialModeGradcheck) {
  const Tensor a = random_tensor({5, 3}, 1, DType::f64, true), theta = random_tensor({3}, 2, DType::f64, true);
  const Tensor w = random_tensor({3, 3}, 3, DType::f64, true);
  for (bool state_is_output : {false, true}) {
    EXPECT_TRUE(gradcheck(
        [&](const TensorList& in) {
          return stream_sequential(in[0], alpha_of(in[1]), kStarts, tanh_ffn(in[2]), state_is_output).output;
        },
        {a, theta, w}))
        << state_is_output;
  }
}

TEST(Sst, TwoPassModeGradcheck) {
  const Tensor a = random_tensor({5, 3}, 4, DType::f64, true), theta = random_tensor({3}, 5, DType::f64, true);
  const Tensor w = random_tensor({3, 3}, 6, DType::f64, true);
  for (bool state_is_output : {false, true}) {
    // With pass 1 recorded the gradient is the whole approximation's.
    EXPECT_TRUE(gradcheck(
        [&](const TensorList& in) {
          return stream_two_pass(in[0], alpha_of(in[1]), kStartFlags, tanh_ffn(in[2]), state_is_output, true);
        },
        {a, theta, w}));
    // Unrecorded (as the model trains), θ's gradient is still exact: pass 1 does not read α.
    const Tensor a_const = a.detach(), w_const = w.detach();
    EXPECT_TRUE(gradcheck(
        [&](const TensorList& in) {
          return stream_two_pass(a_const, alpha_of(in[0]), kStartFlags, tanh_ffn(w_const), state_is_output);
        },
        {theta}));
  }
}

TEST(Sst, SequentialEqualsALoopWrittenHere) {
  Sst m(tiny());
  m.to(DType::f64);
  m.train(false);
  NoGrad no_grad;
  copy_(m.blend_theta, random_tensor({2, 16}, 9));  // a different α per channel and layer
  const PackedBatch batch = two_samples();
  const std::vector<int64_t> positions = batch.positions.to_vector<int64_t>();
  Tensor h = to_dtype(m.model->embed_tokens->forward(batch.tokens), DType::f64);
  for (int64_t l = 0; l < 2; ++l) {
    const nn::TransformerBlock& block = (*m.model->layers)[size_t(l)];
    const Tensor a = h + block.self_attn->forward(block.input_layernorm->forward(h), batch.positions, batch.attn);
    const Tensor alpha = m.alpha(l);
    TensorList rows;
    Tensor s;
    for (int64_t t = 0; t < a.size(0); ++t) {
      if (positions[size_t(t)] == 0) s = zeros({1, 16}, {.dtype = DType::f64});  // a sample starts
      const Tensor b = (1.0 - alpha) * narrow(a, 0, t, 1) + alpha * s;
      const Tensor f = block.mlp->forward(block.post_attention_layernorm->forward(b));
      rows.push_back(b + f);
      s = f;
    }
    h = cat(rows, 0);
  }
  const Tensor expected = m.lm_head->forward(m.model->norm->forward(h));
  EXPECT_EQ(m.logits(batch).to_vector<double>(), expected.to_vector<double>());
}

TEST(Sst, NoStateLeaksAcrossPackedSamples) {
  Sst m(tiny(0.3, 0.9));  // large α: a leak would show
  m.to(DType::f64);  // so that only a leak, not float rounding, separates the two
  NoGrad no_grad;
  const PackedBatch alone = data::pack_rows({{{{6}, {7, 8, 9}}}}, {.row_len = 3});
  for (const std::string depth : {"train", "1", "2"}) {  // training, then evaluation without and with deliberation
    m.train(depth == "train");
    if (depth != "train") m.set_eval_depth(depth);
    const Tensor packed = narrow(m.logits(two_samples()), 0, 4, 3);  // after the first sample's 4 inputs
    EXPECT_TRUE(testing::all_close(packed, m.logits(alone), 1e-10, 1e-12)) << "depth " << depth;
  }
}

// One sequence as a batch whose first `prompt` tokens are the PrefixLM prefix.
PackedBatch whole_sequence(const std::vector<int32_t>& ids, int64_t prompt) {
  const int64_t n = int64_t(ids.size());
  PackedBatch b;
  b.tokens = tensor(std::vector<double>(ids.begin(), ids.end()), {n}, {.dtype = DType::i64});
  b.positions = arange(0, n);
  b.attn.mask = AttentionMask::prefix_lm;
  b.attn.cu_seqlens = tensor({0, double(n)}, {2}, {.dtype = DType::i32});
  b.attn.prefix_len = tensor({double(prompt)}, {1}, {.dtype = DType::i32});
  b.rows = 1;
  b.row_len = n;
  return b;
}

// The logits of decoding `ids` with the KV cache (prompt of 3, then one token at a time) and of
// the full forward over each prefix, at the model's current depth.
void expect_cached_equals_full(Sst& m) {
  const std::vector<int32_t> ids = {1, 2, 3, 4, 5, 6};
  DecodeCache cache;
  for (int64_t n = 3; n <= 6; ++n) {
    const int64_t first = n == 3 ? 0 : n - 1;
    const std::vector<double> fed(ids.begin() + first, ids.begin() + n);
    const Tensor cached = m.next_token_logits(tensor(fed, {int64_t(fed.size())}, {.dtype = DType::i64}), cache);
    const Tensor full = m.logits(whole_sequence(std::vector<int32_t>(ids.begin(), ids.begin() + n), 3));
    EXPECT_TRUE(testing::all_close(cached, narrow(full, 0, n - 1, 1), 1e-10, 1e-12)) << "length " << n;
  }
}

TEST(Sst, DeliberationDepthOneIsPlainSequentialDecoding) {
  Sst m(tiny(0.3, 0.9));
  m.to(DType::f64);
  m.train(false);
  NoGrad no_grad;
  expect_cached_equals_full(m);  // the trained depth: plain sequential
  const Tensor plain = m.logits(two_samples());
  m.set_eval_depth("1");
  EXPECT_EQ(m.logits(two_samples()).to_vector<double>(), plain.to_vector<double>());
  expect_cached_equals_full(m);
  m.set_eval_depth("2");
  expect_cached_equals_full(m);
  EXPECT_GT(amax(abs(m.logits(two_samples()) - plain)).item<double>(), 1e-4);  // deliberation changes the answer
  EXPECT_THROW(m.set_eval_depth("3"), ValueError);
  std::vector<std::string> labels;
  for (const EvalDepth& d : m.eval_depths()) labels.push_back(d.label);
  EXPECT_EQ(labels, (std::vector<std::string>{"1", "2", "4"}));
}

// Deliberation written out for one sequence with a PrefixLM prompt of `prompt` tokens: the prompt
// as one block, then each token alone; a block runs the stack `depth` times, iteration 1 blending
// with the states the previous block committed, later ones with the block's own states from the
// iteration before. No KV cache: each attention runs over the committed layer inputs of the earlier
// blocks and the block's current ones.
Tensor deliberation_loop(const Sst& m, const std::vector<int32_t>& ids, int64_t prompt, int64_t depth) {
  const int64_t layers = 2, n = int64_t(ids.size());
  const PackedBatch whole = whole_sequence(ids, prompt);
  std::vector<Tensor> committed_inputs(layers), committed_states(layers, zeros({1, 16}, {.dtype = DType::f64}));
  TensorList rows;
  for (int64_t first = 0, size = prompt; first < n; first += size, size = 1) {
    const PackedBatch so_far = whole_sequence(std::vector<int32_t>(ids.begin(), ids.begin() + first + size), prompt);
    const Tensor x = m.model->embed_tokens->forward(narrow(whole.tokens, 0, first, size));
    std::vector<Tensor> own(layers), inputs(layers);
    Tensor h;
    for (int64_t i = 0; i < depth; ++i) {
      h = x;
      std::vector<Tensor> produced(layers);
      for (int64_t l = 0; l < layers; ++l) {
        const nn::TransformerBlock& block = (*m.model->layers)[size_t(l)];
        inputs[size_t(l)] = h;
        const Tensor seen = first == 0 ? h : cat({committed_inputs[size_t(l)], h}, 0);
        const Tensor attended =
            seen + block.self_attn->forward(block.input_layernorm->forward(seen), so_far.positions, so_far.attn);
        const Tensor a = narrow(attended, 0, first, size), alpha = m.alpha(l);
        TensorList outputs, states;
        Tensor previous = committed_states[size_t(l)];
        for (int64_t t = 0; t < size; ++t) {
          if (i > 0) previous = narrow(own[size_t(l)], 0, t, 1);
          const Tensor b = (1.0 - alpha) * narrow(a, 0, t, 1) + alpha * previous;
          const Tensor f = block.mlp->forward(block.post_attention_layernorm->forward(b));
          outputs.push_back(b + f);
          states.push_back(f);
          previous = f;
        }
        h = cat(outputs, 0);
        produced[size_t(l)] = cat(states, 0);
      }
      own = produced;
    }
    for (int64_t l = 0; l < layers; ++l) {
      const Tensor& in = inputs[size_t(l)];
      committed_inputs[size_t(l)] = first == 0 ? in : cat({committed_inputs[size_t(l)], in}, 0);
      committed_states[size_t(l)] = narrow(own[size_t(l)], 0, size - 1, 1);
    }
    rows.push_back(h);
  }
  return m.lm_head->forward(m.model->norm->forward(cat(rows, 0)));
}

TEST(Sst, DeliberationEqualsAWholeStackLoopWrittenHere) {
  Sst m(tiny(0.3, 0.9));
  m.to(DType::f64);
  m.train(false);
  NoGrad no_grad;
  copy_(m.blend_theta, random_tensor({2, 16}, 9));
  const std::vector<int32_t> ids = {1, 2, 3, 4, 5, 6};
  for (int64_t prompt : {1, 3}) {  // a prompt of one token: every position is its own block
    for (int64_t depth : {1, 2, 4}) {
      m.set_eval_depth(std::to_string(depth));
      const Tensor expected = deliberation_loop(m, ids, prompt, depth);
      EXPECT_TRUE(testing::all_close(m.logits(whole_sequence(ids, prompt)), expected, 1e-10, 1e-12))
          << "prompt " << prompt << ", depth " << depth;
    }
  }
}

TEST(Sst, DeliberationStopsEarlyWhenStatesSettleAndReportsTheIterations) {
  SstConfig c = tiny(0.3, 0.9);
  Sst never(c);  // no tolerance: every block runs all its iterations
  c.deliberation_tol = 1e9;  // every second iteration counts as settled
  Sst settles(c);
  NoGrad no_grad;
  for (Sst* m : {&never, &settles}) {
    m->train(false);
    EXPECT_TRUE(m->take_step_metrics().empty());  // nothing deliberated yet
  }
  settles.set_eval_depth("2");
  const std::vector<float> two = settles.logits(two_samples()).to_vector<float>();
  settles.take_step_metrics();
  settles.set_eval_depth("4");
  EXPECT_EQ(settles.logits(two_samples()).to_vector<float>(), two);
  EXPECT_EQ(settles.take_step_metrics(), (std::map<std::string, double>{{"sst_deliberation_iters", 2.0}}));
  never.set_eval_depth("4");
  never.logits(two_samples());
  EXPECT_EQ(never.take_step_metrics(), (std::map<std::string, double>{{"sst_deliberation_iters", 4.0}}));
  EXPECT_TRUE(never.take_step_metrics().empty());  // taking resets the count
  for (const std::string depth : {"1", "4"}) {  // generation too, where depth 1 is plain decoding
    settles.set_eval_depth(depth);
    DecodeCache cache;
    settles.next_token_logits(tensor({1, 2, 3}, {3}, {.dtype = DType::i64}), cache);
    settles.next_token_logits(tensor({4}, {1}, {.dtype = DType::i64}), cache);
    const std::map<std::string, double> metrics = settles.take_step_metrics();
    EXPECT_EQ(metrics, (depth == "1" ? std::map<std::string, double>{}
                                     : std::map<std::string, double>{{"sst_deliberation_iters", 2.0}}))
        << depth;
  }
}

TEST(Sst, LearnsToReverseASequenceOnTheCpu) {
  SstConfig c = tiny();
  c.vocab_size = 12;
  c.dim = 64;
  c.heads = 4;
  c.ffn_hidden = 128;
  Sst model(c);
  optim::AdamW opt(optim::decay_groups(model.named_parameters(), 0.01), {.lr = 1e-2});
  // Chance is log(10) ≈ 2.3 per response token; ~10 s of training reach ~0.75 (the baseline's
  // 1000-step, 8-row run reaches ~0: this one is kept short for the suite, not exhaustive).
  EXPECT_LT(ponder::testing::train_reversal(model, opt, {.steps = 500, .peak_lr = 6e-3, .warmup_steps = 50, .rows = 4}),
            1.2);
}

TEST(Sst, CoTrainingTrainsOnlyBlendsAndLoraAndLeavesTheBackboneBytes) {
  SstConfig c = tiny();
  c.freeze_backbone = true;
  c.lora_rank = 2;
  c.lora_layers = {1};
  Sst m(c);
  std::vector<std::string> trainable;
  std::map<std::string, std::vector<float>> before;
  for (const auto& [name, p] : m.named_parameters()) {
    if (p.requires_grad()) trainable.push_back(name);
    before[name] = p.to_vector<float>();
  }
  std::sort(trainable.begin(), trainable.end());
  EXPECT_EQ(trainable, (std::vector<std::string>{
                           "blend_theta", "model.layers.1.self_attn.q_proj.lora_A.weight",
                           "model.layers.1.self_attn.q_proj.lora_B.weight", "model.layers.1.self_attn.v_proj.lora_A.weight",
                           "model.layers.1.self_attn.v_proj.lora_B.weight"}));
  optim::AdamW opt(optim::decay_groups(m.named_parameters(), 0.0), {.lr = 1e-2});
  ponder::testing::train_reversal(m, opt, {.steps = 5, .warmup_steps = 1, .rows = 2});
  for (const auto& [name, p] : m.named_parameters()) {
    const bool same = p.to_vector<float>() == before[name];
    EXPECT_EQ(same, !Sst::is_sst_parameter(name)) << name;
  }
}

const char* kRecipe = R"(
model: {family: sst, vocab_size: 128, dim: 16, layers: 2, heads: 2, ffn_hidden: 32}
data: {task: sort, seq_len: 64}
train: {steps: 2}
batch: {global_tokens: 64}
)";

io::Recipe recipe(const std::vector<std::string>& overrides) {
  return io::parse_recipe(kRecipe, "sst.yaml", overrides);
}

TEST(Sst, RecipeRejectsBadBlendsAndAdapters) {
  auto message = [](std::vector<std::string> o) {
    return testing::error_message<io::ConfigError>([&] { recipe(o); });
  };
  EXPECT_NE(message({"model.alpha_min=0.2", "model.alpha_max=0.1"}).find("model.alpha_min: 0.2"), std::string::npos);
  EXPECT_NE(message({"model.alpha_max=1.5"}).find("model.alpha_max: must lie in (0, 1)"), std::string::npos);
  EXPECT_NE(message({"model.alpha_min=0"}).find("model.alpha_min: must lie in (0, 1)"), std::string::npos);
  EXPECT_NE(message({"model.lora.rank=4", "model.lora.layers=[0, 2]"}).find("model.lora.layers: layer 2 does not exist"),
            std::string::npos);
  EXPECT_NE(message({"model.lora.rank=4", "model.lora.targets=[qproj]"}).find("model.lora.targets"), std::string::npos);
  EXPECT_THROW(Sst(tiny(0.5, 0.5)), ValueError);
}

// A LlamaForCausalLM export of a baseline with the recipe's shapes, as `ponder export` lays it out.
std::filesystem::path export_baseline(const io::Recipe& baseline, const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("ponder_sst_" + name + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto model = train::build_model(baseline.model, 11);
  io::save_safetensors(dir / "model.safetensors", model->state_dict());
  std::ofstream(dir / "config.json") << train::hf_config(baseline, DType::f32).dump();
  return dir;
}

TEST(Sst, BackboneLoadsFromAnExportAndMismatchesAreRejected) {
  const io::Recipe baseline = recipe({"model.family=transformer"});
  const auto dir = export_baseline(baseline, "export");
  const io::Recipe r = recipe({"model.backbone=" + dir.string(), "model.freeze_backbone=true", "model.lora.rank=2"});
  auto sst = train::build_model(r.model, 0);
  train::init_backbone(*sst, r);
  const auto weights = io::load_safetensors(dir / "model.safetensors").tensors;
  for (const auto& [name, p] : sst->named_parameters()) {
    if (Sst::is_sst_parameter(name)) continue;
    EXPECT_EQ(p.to_vector<float>(), weights.at(name).to_vector<float>()) << name;
  }
  const io::Recipe wide = recipe({"model.backbone=" + dir.string(), "model.dim=32"});
  auto other = train::build_model(wide.model, 0);
  EXPECT_NE(testing::error_message<io::ConfigError>([&] { train::init_backbone(*other, wide); })
                .find("model.dim: the recipe says 32 but the backbone"),
            std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ponder::models
