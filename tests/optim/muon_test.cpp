// Muon's Newton–Schulz orthogonalisation, its update rule, and MuonAdamW's split of a model
// between Muon and AdamW. Parity with a PyTorch Muon is in tests/parity/optim_test.cpp.
#include "optim/muon.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>

#include "models/transformer/transformer.h"
#include "support/test_util.h"

namespace ponder::optim {
namespace {

using testing::error_message;
using testing::random_tensor;

// Eigenvalues of the symmetric n×n matrix `a` (row-major), ascending, by cyclic Jacobi rotations.
std::vector<double> symmetric_eigenvalues(std::vector<double> a, int64_t n) {
  auto at = [&](int64_t r, int64_t c) -> double& { return a[r * n + c]; };
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0, diag = 0;
    for (int64_t p = 0; p < n; ++p) {
      diag += at(p, p) * at(p, p);
      for (int64_t q = p + 1; q < n; ++q) off += at(p, q) * at(p, q);
    }
    if (off <= 1e-30 * diag) break;
    for (int64_t p = 0; p < n; ++p) {
      for (int64_t q = p + 1; q < n; ++q) {
        if (at(p, q) == 0) continue;
        // The rotation J that zeroes A[p][q] in JᵀAJ.
        const double theta = (at(q, q) - at(p, p)) / (2 * at(p, q));
        const double t = std::copysign(1.0, theta) / (std::abs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (int64_t k = 0; k < n; ++k) {
          const double kp = at(k, p), kq = at(k, q);
          at(k, p) = c * kp - s * kq;
          at(k, q) = s * kp + c * kq;
        }
        for (int64_t k = 0; k < n; ++k) {
          const double pk = at(p, k), qk = at(q, k);
          at(p, k) = c * pk - s * qk;
          at(q, k) = s * pk + c * qk;
        }
      }
    }
  }
  std::vector<double> eigen(n);
  for (int64_t i = 0; i < n; ++i) eigen[i] = at(i, i);
  std::sort(eigen.begin(), eigen.end());
  return eigen;
}

// Singular values of a 2-D tensor, ascending: square roots of the eigenvalues of its smaller Gram
// matrix (X·Xᵀ or Xᵀ·X), computed in f64.
std::vector<double> singular_values(const Tensor& x) {
  const Tensor x64 = x.to(DType::f64);
  const bool wide = x.size(0) <= x.size(1);
  const Tensor gram = wide ? matmul(x64, x64.t()) : matmul(x64.t(), x64);
  std::vector<double> sv = symmetric_eigenvalues(gram.contiguous().to_vector<double>(), gram.size(0));
  for (double& s : sv) s = std::sqrt(std::max(s, 0.0));
  return sv;
}

// The quintic that one Newton–Schulz step applies to each singular value.
double quintic(double s) { return 3.4445 * s - 4.7750 * s * s * s + 2.0315 * s * s * s * s * s; }

TEST(SymmetricEigenvalues, MatchAKnownSpectrum) {
  const std::vector<double> eigen = symmetric_eigenvalues({2, 1, 1, 2}, 2);
  EXPECT_NEAR(eigen[0], 1, 1e-15);
  EXPECT_NEAR(eigen[1], 3, 1e-15);
  const std::vector<double> sv = singular_values(tensor({3, 0, 0, 0, 0, -2}, {2, 3}, {.dtype = DType::f64}));
  EXPECT_NEAR(sv[0], 2, 1e-15);
  EXPECT_NEAR(sv[1], 3, 1e-15);
}

// The smallest singular value of x relative to its Frobenius norm.
double relative_smallest_singular_value(const Tensor& x) {
  return singular_values(x).front() / norm(x.to(DType::f64)).item<double>();
}

// A random matrix whose singular values relative to its norm are all >= 2e-3: the first of a few
// seeds (square Gaussian matrices are now and then nearly singular; tall and wide ones are not).
Tensor well_conditioned_matrix(const Shape& shape, DType dtype) {
  for (uint64_t seed = 20; seed < 40; ++seed) {
    Tensor x = random_tensor(shape, seed, dtype);
    if (relative_smallest_singular_value(x) >= 2e-3) return x;
  }
  ADD_FAILURE() << "no well-conditioned " << shape << " matrix among the seeds";
  return random_tensor(shape, 20, dtype);
}

// Five steps map every normalised singular value σ ≥ 2e-3 into [0.682, 1.203] (the iterated
// quintic, evaluated on a fine grid of σ; smaller σ are not lifted that far). For matrices without
// smaller σ, each output singular value must be exactly the quintic applied five times to an input
// one, and all of them must lie in the band [0.6, 1.25] (the range above plus a margin).
TEST(NewtonSchulz, SingularValuesOfRandomMatricesLandInTheBand) {
  const std::vector<Shape> shapes = {{32, 32}, {48, 16}, {16, 48}, {40, 40}};
  for (DType dtype : {DType::f32, DType::f64}) {
    for (const Shape& shape : shapes) {
      const Tensor x = well_conditioned_matrix(shape, dtype);
      const std::string what = describe(x);
      std::vector<double> expected = singular_values(x);
      const double frobenius = norm(x.to(DType::f64)).item<double>();
      for (double& s : expected) {
        s /= frobenius + 1e-7;
        for (int step = 0; step < 5; ++step) s = quintic(s);
      }
      std::sort(expected.begin(), expected.end());

      const Tensor o = newton_schulz(x, 5);
      ASSERT_EQ(o.shape(), x.shape());
      EXPECT_EQ(o.dtype(), dtype);
      const std::vector<double> actual = singular_values(o);
      const double tol = dtype == DType::f64 ? 1e-9 : 1e-4;
      for (size_t i = 0; i < actual.size(); ++i) {
        EXPECT_NEAR(actual[i], expected[i], tol) << what << " singular value " << i;
        EXPECT_GE(actual[i], 0.6) << what;
        EXPECT_LE(actual[i], 1.25) << what;
      }
    }
  }
}

TEST(NewtonSchulz, IgnoresTheScaleOfItsInput) {
  const Tensor x = random_tensor({8, 12}, 3);
  EXPECT_TRUE(testing::all_close(newton_schulz(x * 1e3, 5), newton_schulz(x, 5), 1e-6, 1e-9));
}

Tensor param(const Shape& shape, uint64_t seed, DType dtype = DType::f64) {
  return random_tensor(shape, seed, dtype, /*requires_grad=*/true);
}

// The update rule of muon.h written with newton_schulz, for a [rows, cols] f64 parameter.
struct MuonReference {
  Tensor theta, buffer;
  MuonOptions o;
  void step(const Tensor& g, double lr, double wd) {
    buffer = buffer * o.momentum + g;
    const Tensor u = o.nesterov ? g + buffer * o.momentum : buffer;
    const double scale = std::sqrt(std::max(1.0, double(theta.size(0)) / double(theta.size(1))));
    theta = theta * (1 - lr * wd) - newton_schulz(u, o.ns_steps) * (lr * scale);
  }
};

TEST(Muon, FollowsMomentumNesterovScaleAndDecay) {
  for (bool nesterov : {true, false}) {
    for (const Shape& shape : {Shape{12, 4}, Shape{4, 12}}) {  // tall (scale sqrt(3)) and wide (1)
      const MuonOptions options{.lr = 0.05, .momentum = 0.9, .nesterov = nesterov, .ns_steps = 3};
      Tensor p = param(shape, 1);
      MuonReference ref{p.detach().clone(), zeros(shape, {.dtype = DType::f64}), options};
      Muon opt({{"w", {p}, 0.1}}, options);
      for (int t = 0; t < 4; ++t) {
        const Tensor g = random_tensor(shape, 10 + t);
        p.set_grad(g);
        opt.set_lr(0.05 * (t + 1));
        opt.step();
        ref.step(g, 0.05 * (t + 1), 0.1);
      }
      EXPECT_TRUE(testing::all_close(p, ref.theta, 1e-12, 1e-14)) << "nesterov " << nesterov << " " << shape;
    }
  }
}

TEST(Muon, Bf16ParametersFollowAnFp32Master) {
  Tensor p16 = param({6, 10}, 2, DType::bf16);
  Tensor p32 = p16.detach().to(DType::f32).set_requires_grad(true);  // the same starting weights
  Muon opt32({{"w", {p32}, 0.1}}, {.lr = 0.01}), opt16({{"w", {p16}, 0.1}}, {.lr = 0.01});
  for (int t = 0; t < 3; ++t) {
    const Tensor g = random_tensor({6, 10}, 30 + t, DType::f32);
    p32.set_grad(g);
    p16.set_grad(g);
    opt32.step();
    opt16.step();
  }
  const Tensor master = opt16.master_of(p16);
  ASSERT_FALSE(master.is_same(p16));
  EXPECT_EQ(master.to_vector<float>(), p32.to_vector<float>());  // the same f32 computation
  EXPECT_EQ(p16.to_vector<float>(), master.to(DType::bf16).to_vector<float>());  // its rounding
}

TEST(Muon, RejectsBadOptionsAndNon2dParameters) {
  auto rejects = [](MuonOptions o, const std::string& what) {
    const std::string message = error_message<ValueError>([&] { Muon({{"w", {param({2, 2}, 1)}}}, o); });
    EXPECT_NE(message.find(what), std::string::npos) << message;
  };
  rejects({.momentum = 1.0}, "Muon: momentum must lie in [0, 1), got 1");
  rejects({.momentum = -0.1}, "Muon: momentum must lie in [0, 1), got -0.1");
  rejects({.ns_steps = 0}, "Muon: ns_steps must be >= 1, got 0");
  EXPECT_NE(error_message<ShapeError>([] { Muon({{"w", {param({4}, 1)}}}); }).find("is not 2-D"), std::string::npos);
}

// A model-like parameter list: which of these Muon should take is the point of the split.
nn::NamedTensors model_params(DType dtype = DType::f32) {
  Tensor frozen = random_tensor({4, 4}, 9, dtype);
  return {{"model.embed_tokens.weight", param({10, 4}, 1, dtype)},
          {"model.layers.0.self_attn.q_proj.weight", param({4, 4}, 2, dtype)},
          {"model.layers.0.mlp.down_proj.weight", param({4, 8}, 3, dtype)},
          {"model.layers.0.mlp.down_proj.bias", param({4}, 4, dtype)},
          {"model.layers.0.input_layernorm.weight", param({4}, 5, dtype)},
          {"model.frozen.weight", frozen},
          {"lm_head.weight", param({10, 4}, 6, dtype)}};
}

const MuonAdamWOptions kOptions{.muon = {.lr = 0.02, .momentum = 0.9, .ns_steps = 4},
                                .adamw = {.lr = 0.004, .beta1 = 0.8, .beta2 = 0.99, .eps = 1e-6},
                                .weight_decay = 0.1};

TEST(MuonAdamW, SplitsHiddenMatricesFromEmbeddingsHeadAndVectors) {
  const nn::NamedTensors params = model_params();
  MuonAdamW opt(params, kOptions);
  std::map<std::string, std::vector<std::string>> groups;  // group name -> parameter names
  for (const ParamGroup& g : opt.groups()) {
    for (const Tensor& p : g.params) {
      for (const auto& [name, t] : params)
        if (t.is_same(p)) groups[g.name].push_back(name);
    }
  }
  using Names = std::vector<std::string>;
  EXPECT_EQ(groups["muon"], (Names{"model.layers.0.self_attn.q_proj.weight", "model.layers.0.mlp.down_proj.weight"}));
  EXPECT_EQ(groups["adamw_decay"], (Names{"model.embed_tokens.weight", "lm_head.weight"}));
  EXPECT_EQ(groups["adamw_no_decay"],
            (Names{"model.layers.0.mlp.down_proj.bias", "model.layers.0.input_layernorm.weight"}));
  EXPECT_EQ(groups.size(), 3u);  // the frozen weight is in none
  ASSERT_EQ(opt.groups()[0].name, "muon");
  EXPECT_EQ(opt.groups()[0].weight_decay, 0.1);
  EXPECT_EQ(opt.groups()[1].weight_decay, 0.1);
  EXPECT_EQ(opt.groups()[2].weight_decay, 0.0);
  EXPECT_DOUBLE_EQ(opt.groups()[0].lr_scale, 1.0);
  EXPECT_DOUBLE_EQ(opt.groups()[1].lr_scale * opt.lr(), 0.004);  // AdamW runs at its own rate
  EXPECT_DOUBLE_EQ(opt.groups()[2].lr_scale * opt.lr(), 0.004);
}

TEST(MuonAdamW, AModelsProjectionsGoToMuonAndItsEmbeddingsAndHeadToAdamW) {
  models::TransformerConfig c;
  c.vocab_size = 16;
  c.dim = 8;
  c.layers = 1;
  c.heads = 2;
  c.ffn_hidden = 16;
  c.tie_embeddings = false;
  models::Transformer model(c);
  int64_t muon = 0;
  for (const auto& [name, p] : model.named_parameters()) {
    const bool expected = name.find("_proj.weight") != std::string::npos;
    EXPECT_EQ(MuonAdamW::uses_muon(name, p), expected) << name;
    muon += expected;
  }
  EXPECT_EQ(muon, 7);  // q, k, v, o; gate, up, down
}

// Each parameter moves exactly as it would under Muon alone or AdamW alone.
TEST(MuonAdamW, AppliesMuonOrAdamWToEachParameter) {
  const nn::NamedTensors params = model_params();
  MuonAdamW combined(params, kOptions);
  TensorList copies;
  std::vector<std::unique_ptr<Optimizer>> alone;
  for (const auto& [name, p] : params) {
    if (!p.requires_grad()) continue;
    Tensor copy = p.detach().clone().set_requires_grad(true);
    copies.push_back(copy);
    const double wd = p.dim() >= 2 ? kOptions.weight_decay : 0.0;
    if (MuonAdamW::uses_muon(name, p)) {
      alone.push_back(std::make_unique<Muon>(std::vector<ParamGroup>{{"p", {copy}, wd}}, kOptions.muon));
    } else {
      alone.push_back(std::make_unique<AdamW>(std::vector<ParamGroup>{{"p", {copy}, wd}}, kOptions.adamw));
    }
  }
  for (int t = 0; t < 3; ++t) {
    size_t k = 0;
    for (const auto& [name, p] : params) {
      if (!p.requires_grad()) continue;
      const Tensor g = random_tensor(p.shape(), 100 * t + k, DType::f32);
      p.set_grad(g);
      copies[k++].set_grad(g);
    }
    combined.step();
    for (auto& opt : alone) opt->step();
  }
  size_t k = 0;
  for (const auto& [name, p] : params) {
    if (!p.requires_grad()) continue;
    EXPECT_EQ(p.to_vector<float>(), copies[k++].to_vector<float>()) << name;
  }
}

TEST(MuonAdamW, KeepsOnlyTheBuffersEachRuleNeeds) {
  const nn::NamedTensors params = model_params();
  MuonAdamW opt(params, kOptions);
  for (const auto& [name, p] : params) p.set_grad(zeros(p.shape()));
  opt.step();
  std::vector<std::string> names;
  for (const auto& [name, t] : opt.state()) names.push_back(name);
  const std::vector<std::string> expected = {
      "step",
      "muon.0.step", "muon.0.momentum_buffer", "muon.1.step", "muon.1.momentum_buffer",
      "adamw_decay.0.step", "adamw_decay.0.exp_avg", "adamw_decay.0.exp_avg_sq",
      "adamw_decay.1.step", "adamw_decay.1.exp_avg", "adamw_decay.1.exp_avg_sq",
      "adamw_no_decay.0.step", "adamw_no_decay.0.exp_avg", "adamw_no_decay.0.exp_avg_sq",
      "adamw_no_decay.1.step", "adamw_no_decay.1.exp_avg", "adamw_no_decay.1.exp_avg_sq"};
  EXPECT_EQ(names, expected);
}

nn::NamedTensors clone_params(const nn::NamedTensors& params) {
  nn::NamedTensors out;
  for (const auto& [name, p] : params) out.emplace_back(name, p.detach().clone().set_requires_grad(p.requires_grad()));
  return out;
}

void step_with_gradients(MuonAdamW& opt, const nn::NamedTensors& params, int t) {
  size_t k = 0;
  for (const auto& [name, p] : params) {
    // The q projection has no gradient on the first step: its state starts one step later.
    const bool skip = t == 0 && name.find("q_proj") != std::string::npos;
    p.set_grad(skip ? Tensor() : random_tensor(p.shape(), 1000 * t + k++, p.dtype()));
  }
  opt.step();
}

// A checkpoint's optimizer state, loaded into a fresh optimizer over copies of the weights, gives
// the same next steps bit for bit (bf16 weights: the masters travel in the state).
TEST(MuonAdamW, StateRoundTripGivesIdenticalSubsequentSteps) {
  for (DType dtype : {DType::f32, DType::bf16}) {
    const nn::NamedTensors params = model_params(dtype);
    MuonAdamW original(params, kOptions);
    for (int t = 0; t < 3; ++t) step_with_gradients(original, params, t);

    const nn::NamedTensors restored_params = clone_params(params);
    MuonAdamW restored(restored_params, kOptions);
    std::map<std::string, Tensor> state;
    for (const auto& [name, t] : original.state()) state[name] = t.clone();
    restored.load_state(state);
    EXPECT_EQ(restored.steps(), 3);

    for (int t = 3; t < 6; ++t) {
      step_with_gradients(original, params, t);
      step_with_gradients(restored, restored_params, t);
    }
    for (size_t i = 0; i < params.size(); ++i) {
      EXPECT_EQ(params[i].second.to_vector<float>(), restored_params[i].second.to_vector<float>())
          << params[i].first << " " << dtype_name(dtype);
    }
  }
}

TEST(MuonAdamW, AModelWithoutHiddenMatricesIsAllAdamW) {
  nn::NamedTensors params = {{"embed_tokens.weight", param({5, 3}, 1, DType::f32)},
                             {"norm.weight", param({3}, 2, DType::f32)}};
  MuonAdamW opt(params, kOptions);
  ASSERT_EQ(opt.groups().size(), 2u);
  EXPECT_EQ(opt.groups()[0].name, "adamw_decay");
  EXPECT_EQ(opt.groups()[1].name, "adamw_no_decay");
  const Tensor before = params[0].second.clone();
  for (const auto& [name, p] : params) p.set_grad(random_tensor(p.shape(), 7, DType::f32));
  opt.step();
  EXPECT_FALSE(testing::all_close(params[0].second, before));
}

TEST(MuonAdamW, RejectsBadOptions) {
  auto message = [](const std::function<void(MuonAdamWOptions&)>& spoil) {
    MuonAdamWOptions o = kOptions;
    spoil(o);
    return error_message<ValueError>([&] { MuonAdamW(model_params(), o); });
  };
  EXPECT_NE(message([](auto& o) { o.muon.momentum = 1.5; }).find("momentum must lie in [0, 1)"), std::string::npos);
  EXPECT_NE(message([](auto& o) { o.muon.lr = 0; }).find("Muon's lr must be > 0"), std::string::npos);
  EXPECT_NE(message([](auto& o) { o.adamw.beta2 = 1.0; }).find("AdamW's betas must lie in [0, 1)"), std::string::npos);
}

}  // namespace
}  // namespace ponder::optim
