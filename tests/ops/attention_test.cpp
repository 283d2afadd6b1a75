#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <sstream>
#include <string>

#include "ops/ops.h"
#include "support/test_util.h"

namespace ponder {
namespace {
using testing::all_close;
using testing::gradcheck;
using testing::random_tensor;
using testing::relative_error;

constexpr AttentionMask kMasks[] = {AttentionMask::causal, AttentionMask::bidirectional,
                                    AttentionMask::prefix_lm};

// Sample lengths of a packed batch and each sample's prefix_lm prefix length.
struct Packing {
  std::vector<int> lengths;
  std::vector<int> prefixes;
  int64_t tokens() const {
    int64_t n = 0;
    for (int len : lengths) n += len;
    return n;
  }
};

std::string describe_packing(const Packing& p) {
  std::ostringstream os;
  os << "lengths";
  for (int len : p.lengths) os << ' ' << len;
  os << ", prefixes";
  for (int prefix : p.prefixes) os << ' ' << prefix;
  return os.str();
}

Packing random_packing(uint32_t seed, int samples, int max_len = 7) {
  std::mt19937 gen(seed);
  Packing p;
  for (int s = 0; s < samples; ++s) {
    int len = std::uniform_int_distribution<int>(0, max_len)(gen);
    p.lengths.push_back(len);
    p.prefixes.push_back(std::uniform_int_distribution<int>(0, len)(gen));
  }
  return p;
}

// Hand-picked edge cases followed by random packings.
std::vector<Packing> packings() {
  std::vector<Packing> all = {
      {{9}, {4}},                    // a single sample
      {{5, 2, 7, 3}, {2, 0, 7, 1}},  // different lengths; empty and whole-sample prefixes
      {{1, 1, 1}, {0, 1, 0}},        // length-1 samples
      {{4, 0, 6, 0}, {0, 0, 6, 0}},  // zero-length samples, one at the end
      {{0, 3}, {0, 3}},              // a zero-length sample first
  };
  for (uint32_t seed : {1u, 2u, 3u}) all.push_back(random_packing(seed, 6));
  return all;
}

Tensor i32_tensor(const std::vector<int>& values) {
  return tensor(std::vector<double>(values.begin(), values.end()), {int64_t(values.size())},
                {.dtype = DType::i32});
}

AttentionSpec spec_for(const Packing& p, AttentionMask mask) {
  std::vector<int> cu = {0};
  for (int len : p.lengths) cu.push_back(cu.back() + len);
  AttentionSpec spec{.mask = mask, .cu_seqlens = i32_tensor(cu)};
  if (mask == AttentionMask::prefix_lm) spec.prefix_len = i32_tensor(p.prefixes);
  return spec;
}

// allowed[i * N + j]: whether token i may attend token j, written out from the definition.
std::vector<bool> dense_mask(const Packing& p, AttentionMask mask) {
  const int64_t n = p.tokens();
  std::vector<bool> allowed(n * n, false);
  int64_t begin = 0;
  for (size_t s = 0; s < p.lengths.size(); ++s) {
    for (int i = 0; i < p.lengths[s]; ++i) {
      for (int j = 0; j < p.lengths[s]; ++j) {
        bool ok = mask == AttentionMask::bidirectional || j <= i ||
                  (mask == AttentionMask::prefix_lm && j < p.prefixes[s]);
        allowed[(begin + i) * n + begin + j] = ok;
      }
    }
    begin += p.lengths[s];
  }
  return allowed;
}

// Full N x N masked attention in f64, one query head and token at a time.
Tensor dense_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Packing& p,
                       AttentionMask mask, double scale) {
  const int64_t n = q.size(0), hq = q.size(1), hkv = k.size(1), d = q.size(2);
  std::vector<double> qv = q.to_vector<double>(), kv = k.to_vector<double>(), vv = v.to_vector<double>();
  std::vector<bool> allowed = dense_mask(p, mask);
  std::vector<double> out(n * hq * d, 0.0);
  for (int64_t h = 0; h < hq; ++h) {
    const int64_t g = h / (hq / hkv);
    for (int64_t i = 0; i < n; ++i) {
      std::vector<double> score(n, -INFINITY);
      for (int64_t j = 0; j < n; ++j) {
        if (!allowed[i * n + j]) continue;
        double dot = 0;
        for (int64_t c = 0; c < d; ++c) dot += qv[(i * hq + h) * d + c] * kv[(j * hkv + g) * d + c];
        score[j] = scale * dot;
      }
      double max = -INFINITY, total = 0;
      for (double s : score) max = std::max(max, s);
      for (double s : score) total += std::exp(s - max);
      for (int64_t j = 0; j < n; ++j) {
        double weight = std::exp(score[j] - max) / total;
        for (int64_t c = 0; c < d; ++c) out[(i * hq + h) * d + c] += weight * vv[(j * hkv + g) * d + c];
      }
    }
  }
  return tensor(out, q.shape(), {.dtype = DType::f64});
}

struct Inputs {
  Tensor q, k, v;
};

Inputs random_inputs(int64_t tokens, int64_t hq, int64_t hkv, int64_t dim, uint64_t seed,
                     DType dtype = DType::f64, bool requires_grad = false) {
  return {random_tensor({tokens, hq, dim}, seed, dtype, requires_grad),
          random_tensor({tokens, hkv, dim}, seed + 1, dtype, requires_grad),
          random_tensor({tokens, hkv, dim}, seed + 2, dtype, requires_grad)};
}

TEST(Attention, MatchesDenseReferenceForEveryMask) {
  struct HeadLayout {
    int64_t hq, hkv;
  };
  for (AttentionMask mask : kMasks) {
    for (const Packing& p : packings()) {
      for (HeadLayout heads : {HeadLayout{4, 2}, HeadLayout{3, 3}}) {
        SCOPED_TRACE(std::string(mask_name(mask)) + ", " + describe_packing(p) + ", Hq " +
                     std::to_string(heads.hq) + ", Hkv " + std::to_string(heads.hkv));
        Inputs in = random_inputs(p.tokens(), heads.hq, heads.hkv, 5, 11);
        const double scale = 1.0 / std::sqrt(5.0);
        Tensor out = attention(in.q, in.k, in.v, spec_for(p, mask), scale);
        EXPECT_TRUE(all_close(out, dense_attention(in.q, in.k, in.v, p, mask, scale), 1e-12, 1e-12));
      }
    }
  }
}

TEST(Attention, NonContiguousInputsGiveTheSameResult) {
  Packing p{{3, 5}, {1, 2}};
  Tensor q_heads_first = random_tensor({4, 8, 6}, 1);
  Tensor q = q_heads_first.transpose(0, 1);  // [8, 4, 6] with token stride 6
  Inputs in = random_inputs(8, 4, 2, 6, 2);
  for (AttentionMask mask : kMasks) {
    Tensor strided = attention(q, in.k, in.v, spec_for(p, mask), 0.5);
    Tensor dense = attention(q.contiguous(), in.k, in.v, spec_for(p, mask), 0.5);
    EXPECT_EQ(strided.to_vector<double>(), dense.to_vector<double>()) << mask_name(mask);
  }
}

TEST(Attention, GradcheckEveryMask) {
  const Packing p{{3, 0, 1, 4}, {2, 0, 1, 4}};
  struct Case {
    int64_t hq, hkv, dim;
  };
  for (AttentionMask mask : kMasks) {
    for (Case c : {Case{4, 2, 3}, Case{2, 2, 2}, Case{3, 1, 2}}) {
      SCOPED_TRACE(std::string(mask_name(mask)) + ", Hq " + std::to_string(c.hq) + ", Hkv " +
                   std::to_string(c.hkv));
      Inputs in = random_inputs(p.tokens(), c.hq, c.hkv, c.dim, 5, DType::f64, true);
      AttentionSpec spec = spec_for(p, mask);
      auto f = [&](const TensorList& x) { return attention(x[0], x[1], x[2], spec, 0.7); };
      EXPECT_TRUE(gradcheck(f, {in.q, in.k, in.v}));
    }
  }
}

TEST(Attention, GradcheckWithNonContiguousUpstreamGradient) {
  const Packing p{{2, 5}, {1, 3}};
  Inputs in = random_inputs(p.tokens(), 4, 2, 3, 9, DType::f64, true);
  AttentionSpec spec = spec_for(p, AttentionMask::prefix_lm);
  auto f = [&](const TensorList& x) { return attention(x[0], x[1], x[2], spec, 0.4).transpose(0, 2); };
  EXPECT_TRUE(gradcheck(f, {in.q, in.k, in.v}));
}

TEST(Attention, PrefixLmWithEmptyOrFullPrefixMatchesCausalOrBidirectional) {
  const std::vector<int> lengths = {5, 1, 3, 0, 6};
  Inputs in = random_inputs(15, 4, 2, 4, 3);
  auto run = [&](const Packing& p, AttentionMask mask) {
    return attention(in.q, in.k, in.v, spec_for(p, mask), 0.5).to_vector<double>();
  };
  const Packing no_prefix{lengths, {0, 0, 0, 0, 0}}, full_prefix{lengths, lengths};
  EXPECT_EQ(run(no_prefix, AttentionMask::prefix_lm), run(no_prefix, AttentionMask::causal));
  EXPECT_EQ(run(full_prefix, AttentionMask::prefix_lm), run(full_prefix, AttentionMask::bidirectional));
  EXPECT_NE(run(no_prefix, AttentionMask::causal), run(no_prefix, AttentionMask::bidirectional));
}

TEST(Attention, NoLeakageAcrossSamples) {
  const Packing p{{4, 3, 5}, {2, 3, 0}};
  const int64_t begin = 4, end = 7;  // the tokens of sample 1
  for (AttentionMask mask : kMasks) {
    SCOPED_TRACE(mask_name(mask));
    Inputs in = random_inputs(p.tokens(), 2, 2, 3, 21, DType::f64, true);
    AttentionSpec spec = spec_for(p, mask);
    Tensor out = attention(in.q, in.k, in.v, spec, 0.6);

    Tensor k2 = in.k.detach().clone(), v2 = in.v.detach().clone();
    for (int64_t i = begin * 2 * 3; i < end * 2 * 3; ++i) {
      k2.data<double>()[i] += 0.5;
      v2.data<double>()[i] -= 1.5;
    }
    Tensor perturbed = attention(in.q, k2, v2, spec, 0.6);
    for (auto [b, e] : {std::pair<int64_t, int64_t>{0, begin}, {end, p.tokens()}}) {
      EXPECT_EQ(out.slice(0, b, e).to_vector<double>(), perturbed.slice(0, b, e).to_vector<double>());
    }
    EXPECT_NE(out.slice(0, begin, end).to_vector<double>(),
              perturbed.slice(0, begin, end).to_vector<double>());

    // Gradients of sample 1's outputs vanish exactly on the other samples' tokens.
    TensorList grads = autograd::grad({out.slice(0, begin, end).sum()}, {in.q, in.k, in.v});
    for (const Tensor& g : grads) {
      for (auto [b, e] : {std::pair<int64_t, int64_t>{0, begin}, {end, p.tokens()}}) {
        for (double x : g.slice(0, b, e).to_vector<double>()) EXPECT_EQ(x, 0.0);
      }
    }
  }
}

// Output and gradients of one attention call, all converted to f64.
TensorList output_and_grads(const Inputs& in, const AttentionSpec& spec, double scale, const Tensor& weight) {
  Tensor out = attention(in.q, in.k, in.v, spec, scale);
  TensorList result = autograd::grad({out}, {in.q, in.k, in.v}, {weight.to(out.dtype())});
  result.insert(result.begin(), out);
  for (Tensor& t : result) t = t.to(DType::f64);
  return result;
}

TEST(Attention, F32AndBf16AreCloseToF64) {
  const Packing p = random_packing(4, 8);
  const double scale = 1.0 / std::sqrt(16.0);
  Inputs f64 = random_inputs(p.tokens(), 4, 2, 16, 31, DType::f64, true);
  auto lowered = [&](DType dtype) {
    auto lower = [dtype](const Tensor& t) { return t.detach().to(dtype).set_requires_grad(true); };
    return Inputs{lower(f64.q), lower(f64.k), lower(f64.v)};
  };
  Tensor weight = random_tensor(f64.q.shape(), 41);
  for (AttentionMask mask : kMasks) {
    SCOPED_TRACE(mask_name(mask));
    AttentionSpec spec = spec_for(p, mask);
    TensorList expected = output_and_grads(f64, spec, scale, weight);
    TensorList f32 = output_and_grads(lowered(DType::f32), spec, scale, weight);
    TensorList bf16 = output_and_grads(lowered(DType::bf16), spec, scale, weight);
    for (size_t i = 0; i < expected.size(); ++i) {
      SCOPED_TRACE(i == 0 ? "output" : "gradient of input " + std::to_string(i - 1));
      EXPECT_LT(relative_error(f32[i], expected[i]), 1e-6);
      EXPECT_LT(relative_error(bf16[i], expected[i]), 2e-2);
    }
  }
}

TEST(Attention, ManySamplesInParallelMatchTheReferenceDeterministically) {
  const Packing p = random_packing(5, 30, 24);  // enough work for the kernels to use threads
  Inputs in = random_inputs(p.tokens(), 8, 2, 8, 51, DType::f64, true);
  Tensor weight = random_tensor(in.q.shape(), 61);
  for (AttentionMask mask : kMasks) {
    SCOPED_TRACE(mask_name(mask));
    AttentionSpec spec = spec_for(p, mask);
    TensorList first = output_and_grads(in, spec, 0.3, weight);
    TensorList second = output_and_grads(in, spec, 0.3, weight);
    EXPECT_TRUE(all_close(first[0], dense_attention(in.q, in.k, in.v, p, mask, 0.3), 1e-12, 1e-12));
    for (size_t i = 0; i < first.size(); ++i) {
      EXPECT_EQ(first[i].to_vector<double>(), second[i].to_vector<double>());
    }
  }
}

// fn throws E whose message contains `text`.
template <class E>
void expect_error(const std::function<void()>& fn, const std::string& text) {
  try {
    fn();
    ADD_FAILURE() << "no exception; expected one saying: " << text;
  } catch (const E& e) {
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
  }
}

TEST(Attention, BadOperandsAreRejected) {
  const Packing p{{2, 2}, {1, 1}};
  AttentionSpec spec = spec_for(p, AttentionMask::causal);
  Tensor q = zeros({4, 4, 8}), k = zeros({4, 2, 8}), v = zeros({4, 2, 8});
  auto call = [&](const Tensor& qq, const Tensor& kk, const Tensor& vv) {
    return [&spec, qq, kk, vv] { attention(qq, kk, vv, spec, 1.0); };
  };
  expect_error<ShapeError>(call(zeros({4, 32}), k, v),
                           "q, k, v must have rank 3 [tokens, heads, head_dim], got q [4, 32] f32 cpu");
  expect_error<ShapeError>(call(q, zeros({4, 2, 8}), zeros({4, 2, 6})),
                           "k [4, 2, 8] f32 cpu and v [4, 2, 6] f32 cpu must have the same shape");
  expect_error<ShapeError>(call(q, zeros({4, 2, 6}), zeros({4, 2, 6})),
                           "q [4, 4, 8] f32 cpu and k [4, 2, 6] f32 cpu differ in head_dim");
  expect_error<ShapeError>(call(q, zeros({5, 2, 8}), zeros({5, 2, 8})), "differ in token count");
  expect_error<ShapeError>(call(zeros({4, 3, 8}), k, v), "3 query heads are not a multiple of 2 kv heads");
  expect_error<DTypeError>(call(q, k, zeros({4, 2, 8}, {.dtype = DType::f64})), "operands differ in dtype");
  Tensor iq = zeros({4, 4, 8}, {.dtype = DType::i32}), ik = zeros({4, 2, 8}, {.dtype = DType::i32});
  expect_error<DTypeError>(call(iq, ik, ik), "expected a floating tensor");
}

TEST(Attention, BadSpecsAreRejected) {
  Tensor q = zeros({128, 2, 4}), kv = zeros({128, 1, 4});
  auto with = [&](AttentionSpec spec) {
    return [q, kv, spec] { attention(q, kv, kv, spec, 1.0); };
  };
  auto* cu = &i32_tensor;  // a short name for the many spec tensors below
  try {
    attention(q, kv, kv, {.cu_seqlens = cu({0, 60, 100})}, 1.0);
    ADD_FAILURE() << "no exception";
  } catch (const ValueError& e) {
    EXPECT_STREQ(e.what(), "attention: cu_seqlens ends at 100 but q has 128 tokens");
  }
  expect_error<ValueError>(with({}), "spec.cu_seqlens is undefined");
  expect_error<DTypeError>(with({.cu_seqlens = arange(0, 129, 128)}),
                           "cu_seqlens must be i32, got [2] i64 cpu");
  expect_error<ShapeError>(with({.cu_seqlens = cu({0, 128}).reshape({1, 2})}), "cu_seqlens must be 1-D");
  expect_error<ShapeError>(with({.cu_seqlens = cu({})}), "needs at least one entry");
  expect_error<ValueError>(with({.cu_seqlens = cu({1, 128})}), "cu_seqlens must start at 0, got 1");
  expect_error<ValueError>(with({.cu_seqlens = cu({0, 70, 50, 128})}),
                           "cu_seqlens decreases at index 2 (70 -> 50)");
  expect_error<ValueError>(with({.mask = AttentionMask::prefix_lm, .cu_seqlens = cu({0, 28, 128})}),
                           "prefix_lm needs spec.prefix_len");
  expect_error<ShapeError>(
      with({.mask = AttentionMask::prefix_lm, .cu_seqlens = cu({0, 28, 128}), .prefix_len = cu({3})}),
      "prefix_len [1] i32 cpu must have one entry per sample (2 samples)");
  expect_error<DTypeError>(with({.mask = AttentionMask::prefix_lm, .cu_seqlens = cu({0, 28, 128}),
                                 .prefix_len = zeros({2})}),
                           "prefix_len must be i32");
  expect_error<ValueError>(
      with({.mask = AttentionMask::prefix_lm, .cu_seqlens = cu({0, 28, 128}), .prefix_len = cu({3, 101})}),
      "prefix_len[1] = 101 is outside [0, 100] (sample 1 has 100 tokens)");
  expect_error<ValueError>(
      with({.mask = AttentionMask::prefix_lm, .cu_seqlens = cu({0, 28, 128}), .prefix_len = cu({-1, 0})}),
      "prefix_len[0] = -1 is outside [0, 28]");
}

// Each sample's positions 0, 1, ... (restarting per sample, as packed batches have them).
Tensor sample_positions(const Packing& p) {
  std::vector<double> positions;
  for (int len : p.lengths) {
    for (int i = 0; i < len; ++i) positions.push_back(i);
  }
  return tensor(positions, {int64_t(positions.size())}, {.dtype = DType::i64});
}

// rotary_attention is rope_qk then attention, in one node: the same outputs and gradients, to the
// bit (the same kernels in the same order, the backward's inverse rotation in place).
TEST(RotaryAttention, EqualsRopeThenAttention) {
  const Packing p{{5, 2, 7, 3}, {2, 0, 7, 1}};
  const Tensor positions = sample_positions(p);
  for (DType dtype : {DType::f64, DType::f32, DType::bf16}) {
    for (AttentionMask mask : kMasks) {
      SCOPED_TRACE(std::string(mask_name(mask)) + ", " + std::string(dtype_name(dtype)));
      const AttentionSpec spec = spec_for(p, mask);
      auto run = [&](bool fused) {
        Inputs in = random_inputs(p.tokens(), 4, 2, 8, 21, dtype, true);
        Tensor out;
        if (fused) {
          out = rotary_attention(in.q, in.k, in.v, positions, 1e4, spec, 0.35);
        } else {
          RopeQK rotated = rope_qk(in.q, in.k, positions, 1e4);
          out = attention(rotated.q, rotated.k, in.v, spec, 0.35);
        }
        out.backward(random_tensor(out.shape(), 22, dtype));
        return std::vector<std::vector<double>>{out.to_vector<double>(), in.q.grad().to_vector<double>(),
                                                in.k.grad().to_vector<double>(), in.v.grad().to_vector<double>()};
      };
      EXPECT_EQ(run(true), run(false));
    }
  }
}

TEST(RotaryAttention, GradcheckEveryMask) {
  const Packing p{{3, 0, 1, 4}, {2, 0, 1, 4}};
  const Tensor positions = sample_positions(p);
  for (AttentionMask mask : kMasks) {
    SCOPED_TRACE(mask_name(mask));
    Inputs in = random_inputs(p.tokens(), 4, 2, 4, 7, DType::f64, true);
    const AttentionSpec spec = spec_for(p, mask);
    auto f = [&](const TensorList& x) { return rotary_attention(x[0], x[1], x[2], positions, 100.0, spec, 0.6); };
    EXPECT_TRUE(gradcheck(f, {in.q, in.k, in.v}));
  }
}

TEST(RotaryAttention, BadPositionsAreRejected) {
  const Packing p{{2, 2}, {1, 1}};
  const AttentionSpec spec = spec_for(p, AttentionMask::causal);
  Tensor q = zeros({4, 4, 8}), kv = zeros({4, 2, 8});
  expect_error<ShapeError>([&] { rotary_attention(q, kv, kv, zeros({3}, {.dtype = DType::i64}), 1e4, spec, 1.0); },
                           "rotary_attention: positions [3] do not match the leading shape [4] of x [4, 4, 8]");
  expect_error<ValueError>([&] { rotary_attention(q, kv, kv, sample_positions(p), 0.0, spec, 1.0); },
                           "rotary_attention: theta must be finite and positive, got 0");
  expect_error<ShapeError>([&] { rotary_attention(zeros({4, 4, 7}), zeros({4, 2, 7}), zeros({4, 2, 7}),
                                                  sample_positions(p), 1e4, spec, 1.0); },
                           "must be even");
}

}  // namespace
}  // namespace ponder
