#include <gtest/gtest.h>

#include <cmath>

#include "ops/ops.h"
#include "support/test_util.h"

namespace ponder {
namespace {
using testing::all_close;
using testing::gradcheck;
using testing::random_tensor;
using testing::relative_error;

Tensor positions_tensor(const std::vector<double>& values, const Shape& shape, DType dtype = DType::i64) {
  return tensor(values, shape, {.dtype = dtype});
}

// The rotate-half formula with explicit loops in f64.
Tensor naive_rope(const Tensor& x, const Tensor& positions, double theta) {
  const int64_t d = x.shape().back(), half = d / 2, heads = x.size(-2);
  std::vector<double> in = x.to_vector<double>(), out(in.size());
  std::vector<int64_t> pos = positions.to_vector<int64_t>();
  for (size_t n = 0; n < pos.size(); ++n) {
    for (int64_t h = 0; h < heads; ++h) {
      const size_t base = (n * heads + h) * d;
      for (int64_t i = 0; i < half; ++i) {
        double angle = double(pos[n]) / std::pow(theta, double(2 * i) / double(d));
        out[base + i] = in[base + i] * std::cos(angle) - in[base + half + i] * std::sin(angle);
        out[base + half + i] = in[base + half + i] * std::cos(angle) + in[base + i] * std::sin(angle);
      }
    }
  }
  return tensor(out, x.shape(), {.dtype = DType::f64});
}

TEST(Rope, MatchesAnExplicitLoopInF64) {
  Tensor x = random_tensor({2, 3, 4, 8}, 1);
  Tensor pos = positions_tensor({0, 1, 2, 7, 100, 4095}, {2, 3});
  EXPECT_TRUE(all_close(rope(x, pos, 10000.0), naive_rope(x, pos, 10000.0), 1e-13, 1e-13));
  EXPECT_TRUE(all_close(rope(x, pos.to(DType::i32), 500000.0), naive_rope(x, pos, 500000.0), 1e-13, 1e-13));
  Tensor single = random_tensor({2, 6}, 2);  // [H, D]: positions is a scalar
  Tensor p = positions_tensor({5}, {});
  EXPECT_TRUE(all_close(rope(single, p, 10000.0), naive_rope(single, p, 10000.0), 1e-13, 1e-13));
}

TEST(Rope, LargeInputsTakeTheParallelPath) {
  Tensor x = random_tensor({80, 8, 64}, 1);
  std::vector<double> p(80);
  for (size_t i = 0; i < p.size(); ++i) p[i] = double(i * 13);
  Tensor pos = positions_tensor(p, {80});
  EXPECT_TRUE(all_close(rope(x, pos, 10000.0), naive_rope(x, pos, 10000.0), 1e-12, 1e-12));
}

TEST(Rope, F32MatchesTransformers) {
  // Llama's rotary embedding in PyTorch (float32): inv_freq = 1 / theta**(arange(0, D, 2).float() / D),
  // emb = cat(freqs, freqs), q * cos + rotate_half(q) * sin.
  Tensor x = tensor({0.5, -1.0, 2.0, 0.25, 1.5, -0.75, 1.0, 2.0, -0.5, -1.25, 0.125, 3.0}, {2, 1, 6});
  Tensor pos = positions_tensor({3, 1000}, {2});
  Tensor expected = tensor({-0.5302762389183044, -1.1985177993774414, 2.00480580329895, -0.17693811655044556,
                            1.3466829061508179, -0.7370578646659851, 1.5959784984588623, -1.6006128787994385,
                            -2.227858304977417, 0.1239057183265686, 1.2056796550750732, -2.0704221725463867},
                           {2, 1, 6});
  EXPECT_TRUE(all_close(rope(x, pos, 10000.0), expected, 1e-6, 1e-6));
}

TEST(Rope, PositionsRestartPerSample) {
  // Two packed sequences of lengths 3 and 2: each starts again at position 0.
  Tensor x = random_tensor({5, 2, 4}, 1);
  Tensor out = rope(x, positions_tensor({0, 1, 2, 0, 1}, {5}), 10000.0);
  EXPECT_TRUE(all_close(out.slice(0, 3, 4), x.slice(0, 3, 4), 0, 0));  // position 0 is the identity
  EXPECT_TRUE(all_close(out.slice(0, 0, 3), rope(x.slice(0, 0, 3), positions_tensor({0, 1, 2}, {3}), 10000.0), 0, 0));
  EXPECT_TRUE(all_close(out.slice(0, 3, 5), rope(x.slice(0, 3, 5), positions_tensor({0, 1}, {2}), 10000.0), 0, 0));
  EXPECT_TRUE(all_close(out, naive_rope(x, positions_tensor({0, 1, 2, 0, 1}, {5}), 10000.0), 1e-13, 1e-13));
  // Batched [B, S, H, D]: every sample's positions start at 0, so a sample alone rotates the same.
  Tensor batch = random_tensor({2, 3, 2, 4}, 2);
  Tensor rotated = rope(batch, positions_tensor({0, 1, 2, 0, 1, 2}, {2, 3}), 10000.0);
  EXPECT_TRUE(all_close(rotated.slice(0, 1, 2),
                        rope(batch.slice(0, 1, 2), positions_tensor({0, 1, 2}, {1, 3}), 10000.0), 0, 0));
}

TEST(Rope, PreservesTheNormOfEachHeadVector) {
  Tensor x = random_tensor({3, 4, 2, 16}, 1);
  Tensor pos = positions_tensor({0, 5, 17, 64, 999, 3, 8191, 2, 1, 4, 77, 123}, {3, 4});
  EXPECT_TRUE(all_close(norm(rope(x, pos, 10000.0), {-1}), norm(x, {-1}), 1e-13, 1e-13));
  Tensor x32 = x.to(DType::f32);
  EXPECT_TRUE(all_close(norm(rope(x32, pos, 10000.0), {-1}), norm(x32, {-1}), 1e-5, 1e-6));
}

TEST(Rope, Gradcheck) {
  struct Case {
    Shape x;
    Tensor pos;
  };
  for (const Case& c : {Case{{3, 2, 4}, positions_tensor({0, 3, 9}, {3})},
                        Case{{2, 3, 2, 8}, positions_tensor({4, 0, 1, 2, 0, 1}, {2, 3}, DType::i32)},
                        Case{{1, 2}, positions_tensor({7}, {})}}) {
    Tensor x = random_tensor(c.x, 1, DType::f64, true);
    EXPECT_TRUE(gradcheck([&](const TensorList& in) { return rope(in[0], c.pos, 10000.0); }, {x})) << c.x;
  }
}

TEST(Rope, GradcheckThroughAStridedInput) {
  Tensor x = random_tensor({2, 6, 3}, 1, DType::f64, true);
  Tensor pos = positions_tensor({11, 2}, {2});
  EXPECT_TRUE(gradcheck([&](const TensorList& in) { return rope(in[0].transpose(1, 2), pos, 100.0); }, {x}));
}

TEST(Rope, BackwardIsTheInverseRotation) {
  Tensor x = random_tensor({4, 3, 8}, 1, DType::f64, true);
  Tensor pos = positions_tensor({2, 40, 0, 7}, {4});
  Tensor y = rope(x, pos, 10000.0);
  Tensor back = autograd::grad({y}, {x}, {y.detach()})[0];
  EXPECT_TRUE(all_close(back, x.detach(), 1e-13, 1e-13));
}

TEST(Rope, F32AndBf16AreCloseToF64) {
  // Small positions: a float angle position * inv_freq has an absolute error of about position * 6e-8.
  Tensor x = random_tensor({6, 4, 32}, 1);
  Tensor pos = positions_tensor({0, 1, 2, 3, 4, 5}, {6});
  Tensor ref = rope(x, pos, 10000.0);
  EXPECT_LT(relative_error(rope(x.to(DType::f32), pos, 10000.0), ref), 1e-6);
  Tensor bf = rope(x.to(DType::bf16), pos, 10000.0);
  EXPECT_EQ(bf.dtype(), DType::bf16);
  EXPECT_LT(relative_error(bf, ref), 1e-2);
  Tensor g = random_tensor({6, 4, 32}, 2);
  Tensor x32 = x.to(DType::f32).detach().set_requires_grad(true);
  Tensor x64 = x.detach().set_requires_grad(true);
  Tensor g32 = autograd::grad({rope(x32, pos, 10000.0)}, {x32}, {g.to(DType::f32)})[0];
  Tensor g64 = autograd::grad({rope(x64, pos, 10000.0)}, {x64}, {g})[0];
  EXPECT_LT(relative_error(g32, g64), 1e-6);
}

TEST(Rope, BadInputsNameTheOperands) {
  EXPECT_EQ(testing::error_message<ShapeError>([&] { rope(zeros({2, 3, 5}), positions_tensor({0, 1}, {2}), 1e4); }),
            "rope: the head dimension of x [2, 3, 5] must be even");
  EXPECT_EQ(testing::error_message<ShapeError>([&] { rope(zeros({2, 5, 4, 8}), zeros({2, 4}, {.dtype = DType::i64}), 1e4); }),
            "rope: positions [2, 4] do not match the leading shape [2, 5] of x [2, 5, 4, 8]");
  EXPECT_EQ(testing::error_message<ValueError>([&] { rope(zeros({3, 1, 2}), positions_tensor({0, -3, 1}, {3}), 1e4); }),
            "rope: position -3 at index 1 is negative");
  EXPECT_EQ(testing::error_message<ShapeError>([&] { rope(zeros({8}), positions_tensor({0}, {}), 1e4); }),
            "rope: x must have shape [..., H, D], got [8] f32 cpu");
  EXPECT_EQ(testing::error_message<DTypeError>([&] { rope(zeros({2, 1, 2}), zeros({2}), 1e4); }),
            "rope: positions must be i32 or i64, got [2] f32 cpu");
  EXPECT_EQ(testing::error_message<ValueError>([&] { rope(zeros({2, 1, 2}), positions_tensor({0, 1}, {2}), 0.0); }),
            "rope: theta must be finite and positive, got 0");
  EXPECT_THROW(rope(arange(0, 4).reshape({2, 2}), positions_tensor({0}, {}), 1e4), DTypeError);
}

}  // namespace
}  // namespace ponder
