#include "nn/transformer.h"

#include <gtest/gtest.h>

#include "nn/init.h"
#include "nn/nn_test_util.h"
#include "ops/ops.h"
#include "tensor/allocator.h"

namespace ponder::nn {
namespace {
using ponder::testing::all_close;
using ponder::testing::error_message;
using ponder::testing::random_tensor;
using testing::gradcheck_module;
using testing::packed;
using testing::parameter_names;

using Names = std::vector<std::string>;

BlockConfig small_config(NormConfig norm = {}, bool post_norm = false) {
  return {.attn = {.dim = 8, .heads = 2, .kv_heads = 1, .rope_theta = 10000.0, .output_gate = true, .qk_norm = true},
          .mlp = {.dim = 8, .hidden = 12},
          .norm = norm,
          .post_norm = post_norm};
}

void perturb_norms(Module& m, Generator& gen) {
  NoGrad no_grad;
  for (auto& [name, p] : m.named_parameters()) {
    if (name.ends_with("norm.weight")) normal_(p, 1.0, 0.2, gen);
    if (name.ends_with("norm.bias")) normal_(p, 0.0, 0.2, gen);
  }
}

TEST(NnBlock, HfLlamaNames) {
  Generator gen(1);
  TransformerBlock block(small_config(), gen);
  EXPECT_EQ(parameter_names(block),
            Names({"self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
                   "self_attn.o_proj.weight", "self_attn.gate_proj.weight", "self_attn.q_norm.weight",
                   "self_attn.k_norm.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight",
                   "input_layernorm.weight", "post_attention_layernorm.weight"}));
  TransformerBlock bare({.attn = {.dim = 8, .heads = 2},
                         .mlp = {.dim = 8, .hidden = 12, .activation = Activation::relu2},
                         .norm = {.weighted = false},
                         .post_norm = true},
                        gen);
  EXPECT_EQ(parameter_names(bare), Names({"self_attn.q_proj.weight", "self_attn.k_proj.weight",
                                          "self_attn.v_proj.weight", "self_attn.o_proj.weight", "mlp.up_proj.weight",
                                          "mlp.down_proj.weight"}));
  TransformerBlock layer_norm({.attn = {.dim = 8, .heads = 2}, .mlp = {.dim = 8, .hidden = 12},
                               .norm = {.kind = NormKind::layer}},
                              gen);
  Names names = parameter_names(layer_norm);
  EXPECT_EQ(Names(names.end() - 4, names.end()), Names({"input_layernorm.weight", "input_layernorm.bias",
                                                        "post_attention_layernorm.weight",
                                                        "post_attention_layernorm.bias"}));
}

TEST(NnBlock, PreAndPostNormForwardMatchTheirDefinitions) {
  Generator gen(2);
  auto p = packed({4, 5}, AttentionMask::prefix_lm, {2, 3});
  Tensor x = random_tensor({p.tokens, 8}, 3, DType::f32);
  for (NormKind kind : {NormKind::rms, NormKind::layer}) {
    for (bool post : {false, true}) {
      TransformerBlock b(small_config({.kind = kind, .eps = 1e-5}, post), gen);
      perturb_norms(b, gen);
      const Norm &n1 = *b.input_layernorm, &n2 = *b.post_attention_layernorm;
      auto attn = [&](const Tensor& h) { return b.self_attn->forward(h, p.positions, p.spec); };
      Tensor expected;
      if (post) {
        Tensor h = n1.forward(x + attn(x));
        expected = n2.forward(h + b.mlp->forward(h));
      } else {
        Tensor h = x + attn(n1.forward(x));
        expected = h + b.mlp->forward(n2.forward(h));
      }
      EXPECT_TRUE(all_close(b.forward(x, p.positions, p.spec), expected, 1e-5, 1e-6)) << post;
    }
  }
}

TEST(NnBlock, BranchHooksScaleEachBranchBeforeTheResidual) {
  Generator gen(4);
  auto p = packed({6});
  Tensor x = random_tensor({6, 8}, 5, DType::f32);
  Tensor g_attn = random_tensor({8}, 6, DType::f32), g_mlp = random_tensor({8}, 7, DType::f32);
  for (bool post : {false, true}) {
    TransformerBlock b(small_config({}, post), gen);
    b.attn_branch_hook = [&](const Tensor& branch) { return branch * g_attn; };
    b.mlp_branch_hook = [&](const Tensor& branch) { return branch * g_mlp; };
    const Norm &n1 = *b.input_layernorm, &n2 = *b.post_attention_layernorm;
    auto attn = [&](const Tensor& h) { return b.self_attn->forward(h, p.positions, p.spec); };
    Tensor expected;
    if (post) {
      Tensor h = n1.forward(x + attn(x) * g_attn);
      expected = n2.forward(h + b.mlp->forward(h) * g_mlp);
    } else {
      Tensor h = x + attn(n1.forward(x)) * g_attn;
      expected = h + b.mlp->forward(n2.forward(h)) * g_mlp;
    }
    EXPECT_TRUE(all_close(b.forward(x, p.positions, p.spec), expected, 1e-5, 1e-6)) << post;
  }
}

TEST(NnBlock, Gradcheck) {
  Generator gen(8);
  auto p = packed({3, 2}, AttentionMask::prefix_lm, {1, 2});
  for (bool post : {false, true}) {
    TransformerBlock b(small_config({}, post), gen);
    perturb_norms(b, gen);
    b.to(DType::f64);
    Tensor x = random_tensor({p.tokens, 8}, 9, DType::f64, true);
    EXPECT_TRUE(gradcheck_module(b, x, [&](const Tensor& in) { return b.forward(in, p.positions, p.spec); }))
        << post;
  }
}

TEST(NnBlock, MismatchedWidthsAreRejected) {
  Generator gen(10);
  BlockConfig mismatched{.attn = {.dim = 8, .heads = 2}, .mlp = {.dim = 6, .hidden = 4}};
  EXPECT_EQ(error_message<ValueError>([&] { TransformerBlock(mismatched, gen); }),
            "TransformerBlock: attention dim 8 differs from the MLP dim 6");
}

TEST(NnStack, NamesAndForward) {
  Generator gen(11);
  Stack stack(small_config(), 2, NormConfig{.eps = 1e-5}, gen);
  Names names = parameter_names(stack);
  ASSERT_EQ(names.size(), 2 * 12 + 1u);
  EXPECT_EQ(names.front(), "layers.0.self_attn.q_proj.weight");
  EXPECT_EQ(names[12], "layers.1.self_attn.q_proj.weight");
  EXPECT_EQ(names[23], "layers.1.post_attention_layernorm.weight");
  EXPECT_EQ(names.back(), "norm.weight");
  perturb_norms(stack, gen);
  auto p = packed({5, 4});
  Tensor x = random_tensor({p.tokens, 8}, 12, DType::f32);
  Tensor h = (*stack.layers)[1].forward((*stack.layers)[0].forward(x, p.positions, p.spec), p.positions, p.spec);
  EXPECT_TRUE(all_close(stack.forward(x, p.positions, p.spec), stack.norm->forward(h), 1e-5, 1e-6));

  Stack open(small_config(), 1, std::nullopt, gen);
  EXPECT_EQ(open.norm, nullptr);
  EXPECT_EQ(parameter_names(open).back(), "layers.0.post_attention_layernorm.weight");
  EXPECT_TRUE(all_close(open.forward(x, p.positions, p.spec), (*open.layers)[0].forward(x, p.positions, p.spec),
                        0, 0));
  EXPECT_EQ(error_message<ValueError>([&] { Stack(small_config(), 0, std::nullopt, gen); }),
            "Stack: layers must be positive, got 0");
}

TEST(NnStack, GradientsReachEveryParameter) {
  Generator gen(13);
  Stack stack(small_config(), 2, NormConfig{}, gen);
  auto p = packed({4, 3}, AttentionMask::bidirectional);
  Tensor out = stack.forward(random_tensor({p.tokens, 8}, 14, DType::f32), p.positions, p.spec);
  square(out).sum().backward();
  for (auto& [name, param] : stack.named_parameters()) EXPECT_TRUE(param.grad().defined()) << name;
}


// A two-layer stack's gradients under `recompute`, and the bytes its forward leaves held for
// backward (the output included).
struct RecomputeRun {
  TensorList grads;
  int64_t kept_bytes = 0;
};

RecomputeRun run_with(Recompute recompute, bool post_norm) {
  Generator gen(15);
  Stack stack(small_config({}, post_norm), 2, NormConfig{}, gen);
  perturb_norms(stack, gen);
  stack.to(DType::f64);  // the sums of a gradient's parts may come in another order: f64 leaves ~1e-16
  set_recompute(stack, recompute);
  auto p = packed({6, 9, 1}, AttentionMask::prefix_lm, {2, 9, 0});
  Tensor x = random_tensor({p.tokens, 8}, 16, DType::f64, true);
  Tensor upstream = random_tensor({p.tokens, 8}, 17, DType::f64);
  const int64_t before = memory_stats(Device::cpu()).current_bytes;
  // Applied twice, as the weight-shared recurrent stacks are: each parameter meets two regions.
  Tensor out = stack.forward(stack.forward(x, p.positions, p.spec), p.positions, p.spec);
  RecomputeRun run;
  run.kept_bytes = memory_stats(Device::cpu()).current_bytes - before;
  (out * upstream).sum().backward();
  for (auto& [name, param] : stack.named_parameters()) run.grads.push_back(param.grad());
  run.grads.push_back(x.grad());
  return run;
}

TEST(NnStack, RecomputationKeepsLessAndGivesTheSameGradients) {
  for (bool post_norm : {false, true}) {
    const RecomputeRun kept = run_with(Recompute::none, post_norm);
    const RecomputeRun products = run_with(Recompute::elementwise, post_norm);
    const RecomputeRun mlp = run_with(Recompute::mlp, post_norm);
    const RecomputeRun both = run_with(Recompute::attention_mlp, post_norm);
    // elementwise: the SwiGLU output (12 wide) and the gated attention output (2 heads x 4), f64,
    // of the 16 tokens in each of the 2 blocks, in each of the stack's 2 applications
    EXPECT_EQ(kept.kept_bytes - products.kept_bytes, 2 * 2 * 16 * (12 + 8) * 8) << "post_norm " << post_norm;
    EXPECT_LT(mlp.kept_bytes, products.kept_bytes) << "post_norm " << post_norm;
    EXPECT_LT(both.kept_bytes, mlp.kept_bytes) << "post_norm " << post_norm;
    for (const RecomputeRun* run : {&products, &mlp, &both}) {
      ASSERT_EQ(run->grads.size(), kept.grads.size());
      for (size_t i = 0; i < kept.grads.size(); ++i)
        EXPECT_TRUE(all_close(run->grads[i], kept.grads[i], 1e-12, 1e-14)) << "gradient " << i;
    }
  }
  EXPECT_EQ(parse_recompute("attention_mlp"), Recompute::attention_mlp);
  EXPECT_EQ(error_message<ValueError>([] { parse_recompute("all"); }),
            "recompute: unknown value \"all\" (choices: none, elementwise, mlp, attention_mlp)");
}

}  // namespace
}  // namespace ponder::nn
