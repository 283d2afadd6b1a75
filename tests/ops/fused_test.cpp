#include <gtest/gtest.h>

#include <cmath>

#include "ops/ops.h"
#include "support/test_util.h"

namespace ponder {
namespace {
using testing::all_close;
using testing::error_message;
using testing::gradcheck;
using testing::random_tensor;
using testing::relative_error;

const std::vector<Shape> kShapes = {{1}, {7}, {3, 5}, {2, 3, 8}, {4, 1}};

Tensor positions_of(const std::vector<double>& values, const Shape& shape) {
  return tensor(values, shape, {.dtype = DType::i64});
}

TEST(Swiglu, MatchesSiluTimesUp) {
  for (const Shape& shape : kShapes) {
    Tensor gate = random_tensor(shape, 1), up = random_tensor(shape, 2);
    EXPECT_TRUE(all_close(swiglu(gate, up), silu(gate) * up, 1e-15, 1e-15)) << shape;
  }
  // silu(1) * 2 = 2 / (1 + e^-1), silu(-2) * 0.5 = -1 / (1 + e^2): torch.nn.functional.silu(x) * u in f64.
  Tensor out = swiglu(tensor({1, -2}, {2}, {.dtype = DType::f64}), tensor({2, 0.5}, {2}, {.dtype = DType::f64}));
  EXPECT_TRUE(all_close(out, tensor({1.4621171572600098, -0.11920292202211755}, {2}, {.dtype = DType::f64}), 1e-15, 0));
}

TEST(GatedOutput, MatchesSigmoidTimesAttn) {
  for (const Shape& shape : kShapes) {
    Tensor gate = random_tensor(shape, 1), attn = random_tensor(shape, 2);
    EXPECT_TRUE(all_close(gated_output(gate, attn), sigmoid(gate) * attn, 1e-15, 1e-15)) << shape;
  }
}

TEST(GatedProducts, Gradcheck) {
  for (const Shape& shape : kShapes) {
    Tensor gate = random_tensor(shape, 1, DType::f64, true), value = random_tensor(shape, 2, DType::f64, true);
    EXPECT_TRUE(gradcheck([](const TensorList& in) { return swiglu(in[0], in[1]); }, {gate, value})) << shape;
    EXPECT_TRUE(gradcheck([](const TensorList& in) { return gated_output(in[0], in[1]); }, {gate, value})) << shape;
  }
  // One operand without a gradient, and strided operands.
  Tensor gate = random_tensor({4, 6}, 3, DType::f64, true), value = random_tensor({6, 4}, 4);
  EXPECT_TRUE(gradcheck([&](const TensorList& in) { return swiglu(in[0], value.t()); }, {gate}));
  EXPECT_TRUE(gradcheck([&](const TensorList& in) { return gated_output(in[0].t(), in[0].t() * 2.0); }, {gate}));
}

TEST(GatedProducts, F32AndBf16AreCloseToF64) {
  Tensor gate = random_tensor({9, 33}, 1), value = random_tensor({9, 33}, 2), g = random_tensor({9, 33}, 3);
  for (auto op : {swiglu, gated_output}) {
    auto run = [&](DType dt) {
      Tensor gd = gate.to(dt).detach().set_requires_grad(true), vd = value.to(dt).detach().set_requires_grad(true);
      Tensor y = op(gd, vd);
      TensorList grads = autograd::grad({y}, {gd, vd}, {g.to(dt)});
      return TensorList{y, grads[0], grads[1]};
    };
    TensorList ref = run(DType::f64), f32 = run(DType::f32), bf = run(DType::bf16);
    for (size_t i = 0; i < ref.size(); ++i) {
      EXPECT_LT(relative_error(f32[i], ref[i]), 1e-6) << i;
      EXPECT_EQ(bf[i].dtype(), DType::bf16);
      EXPECT_LT(relative_error(bf[i], ref[i]), 1e-2) << i;
    }
  }
}

TEST(AddRmsNorm, EqualsTheAddThenRmsNorm) {
  for (const Shape& shape : kShapes) {
    Tensor x = random_tensor(shape, 1), r = random_tensor(shape, 2), w = random_tensor({shape.back()}, 3);
    AddRmsNorm out = add_rms_norm(x, r, w, 1e-6);
    EXPECT_TRUE(all_close(out.sum, x + r, 0, 0)) << shape;
    EXPECT_TRUE(all_close(out.normed, rms_norm(x + r, w, 1e-6), 0, 0)) << shape;
    EXPECT_TRUE(all_close(add_rms_norm(x, r, {}, 1e-5).normed, rms_norm(x + r, {}, 1e-5), 0, 0)) << shape;
  }
  // bf16: the sum is rounded to bf16 before it is normalised, exactly as the unfused ops.
  Tensor x = random_tensor({5, 40}, 4, DType::bf16), r = random_tensor({5, 40}, 5, DType::bf16);
  Tensor w = random_tensor({40}, 6, DType::bf16);
  AddRmsNorm out = add_rms_norm(x, r, w, 1e-6);
  EXPECT_EQ(out.sum.to_vector<float>(), (x + r).to_vector<float>());
  EXPECT_EQ(out.normed.to_vector<float>(), rms_norm(x + r, w, 1e-6).to_vector<float>());
}

TEST(AddRmsNorm, Gradcheck) {
  for (const Shape& shape : kShapes) {
    Tensor x = random_tensor(shape, 1, DType::f64, true), r = random_tensor(shape, 2, DType::f64, true);
    Tensor w = random_tensor({shape.back()}, 3, DType::f64, true);
    auto both = [](const TensorList& in) {
      AddRmsNorm out = add_rms_norm(in[0], in[1], in[2], 1e-6);
      return cat({out.sum, out.normed}, 0);
    };
    EXPECT_TRUE(gradcheck(both, {x, r, w})) << shape;
    // Only one output used: the other's gradient arrives undefined.
    EXPECT_TRUE(
        gradcheck([](const TensorList& in) { return add_rms_norm(in[0], in[1], in[2], 1e-6).normed; }, {x, r, w}))
        << shape;
    EXPECT_TRUE(gradcheck([](const TensorList& in) { return add_rms_norm(in[0], in[1], Tensor(), 1e-6).sum; }, {x, r}))
        << shape;
    EXPECT_TRUE(
        gradcheck([](const TensorList& in) { return add_rms_norm(in[0], in[1], Tensor(), 1e-6).normed; }, {x, r}))
        << shape;
  }
  // Only the weight needs a gradient; a strided residual.
  Tensor x = random_tensor({3, 4}, 4), r = random_tensor({4, 3}, 5), w = random_tensor({4}, 6, DType::f64, true);
  EXPECT_TRUE(gradcheck([&](const TensorList& in) { return add_rms_norm(x, r.t(), in[0], 1e-6).normed; }, {w}));
  // Only one of the summands needs a gradient: it gets the whole gradient of the sum.
  Tensor xg = x.detach().clone().set_requires_grad(true), rg = r.t().contiguous().set_requires_grad(true);
  auto sum_and_normed = [](const AddRmsNorm& out) { return cat({out.sum, out.normed}, 0); };
  EXPECT_TRUE(gradcheck([&](const TensorList& in) { return sum_and_normed(add_rms_norm(in[0], r.t(), w, 1e-6)); },
                        {xg}));
  EXPECT_TRUE(gradcheck([&](const TensorList& in) { return sum_and_normed(add_rms_norm(x, in[0], w, 1e-6)); }, {rg}));
}

TEST(AddRmsNorm, F32AndBf16AreCloseToF64) {
  Tensor x = random_tensor({9, 33}, 1), r = random_tensor({9, 33}, 2), w = random_tensor({33}, 3);
  Tensor g_sum = random_tensor({9, 33}, 4), g_normed = random_tensor({9, 33}, 5);
  auto run = [&](DType dt) {
    Tensor xd = x.to(dt).detach().set_requires_grad(true), rd = r.to(dt).detach().set_requires_grad(true);
    Tensor wd = w.to(dt).detach().set_requires_grad(true);
    AddRmsNorm out = add_rms_norm(xd, rd, wd, 1e-6);
    TensorList grads = autograd::grad({out.sum, out.normed}, {xd, rd, wd}, {g_sum.to(dt), g_normed.to(dt)});
    return TensorList{out.sum, out.normed, grads[0], grads[1], grads[2]};
  };
  TensorList ref = run(DType::f64), f32 = run(DType::f32), bf = run(DType::bf16);
  for (size_t i = 0; i < ref.size(); ++i) {
    EXPECT_LT(relative_error(f32[i], ref[i]), 1e-6) << i;
    EXPECT_LT(relative_error(bf[i], ref[i]), 2e-2) << i;
  }
}

TEST(RopeQK, EqualsTwoRopes) {
  Tensor q = random_tensor({2, 3, 4, 8}, 1), k = random_tensor({2, 3, 2, 8}, 2);
  Tensor pos = positions_of({0, 1, 2, 0, 1, 4095}, {2, 3});  // restarting per sample
  RopeQK out = rope_qk(q, k, pos, 10000.0);
  EXPECT_TRUE(all_close(out.q, rope(q, pos, 10000.0), 0, 0));
  EXPECT_TRUE(all_close(out.k, rope(k, pos, 10000.0), 0, 0));
  RopeQK f32 = rope_qk(q.to(DType::f32), k.to(DType::f32), pos.to(DType::i32), 500000.0);
  EXPECT_EQ(f32.q.to_vector<float>(), rope(q.to(DType::f32), pos, 500000.0).to_vector<float>());
  EXPECT_EQ(f32.k.to_vector<float>(), rope(k.to(DType::f32), pos, 500000.0).to_vector<float>());
}

TEST(RopeQK, Gradcheck) {
  Tensor q = random_tensor({3, 4, 6}, 1, DType::f64, true), k = random_tensor({3, 2, 6}, 2, DType::f64, true);
  Tensor pos = positions_of({0, 5, 17}, {3});
  auto both = [&](const TensorList& in) {
    RopeQK out = rope_qk(in[0], in[1], pos, 10000.0);
    return cat({out.q, out.k}, 1);
  };
  EXPECT_TRUE(gradcheck(both, {q, k}));
  EXPECT_TRUE(gradcheck([&](const TensorList& in) { return rope_qk(in[0], in[1], pos, 100.0).k; }, {q, k}));
  // A strided q whose k needs no gradient.
  Tensor qt = random_tensor({6, 4, 3}, 3, DType::f64, true), kc = random_tensor({3, 1, 6}, 4);
  EXPECT_TRUE(gradcheck([&](const TensorList& in) { return rope_qk(in[0].permute({2, 1, 0}), kc, pos, 1e4).q; }, {qt}));
}

TEST(FusedOps, BadInputsNameTheOperands) {
  EXPECT_EQ(error_message<ShapeError>([] {
              swiglu(zeros({2, 3}), zeros({3, 2}));
            }),
            "swiglu: gate [2, 3] and up [3, 2] must have the same shape");
  EXPECT_EQ(error_message<ShapeError>([] {
              gated_output(zeros({4}), zeros({2, 2}));
            }),
            "gated_output: gate_pre [4] and attn [2, 2] must have the same shape");
  EXPECT_EQ(error_message<DTypeError>([] { swiglu(zeros({2}), zeros({2}, {.dtype = DType::f64})); }),
            "swiglu: operands differ in dtype: [2] f32 cpu and [2] f64 cpu");
  EXPECT_EQ(error_message<DTypeError>([] { swiglu(arange(0, 2), arange(0, 2)); }),
            "swiglu: expected a floating tensor, got [2] i64 cpu");
  EXPECT_EQ(error_message<ShapeError>([] {
              add_rms_norm(zeros({2, 3}), zeros({2, 4}), Tensor(), 1e-6);
            }),
            "add_rms_norm: x [2, 3] and residual [2, 4] must have the same shape");
  EXPECT_EQ(error_message<ShapeError>([] {
              add_rms_norm(zeros({2, 3}), zeros({2, 3}), zeros({4}), 1e-6);
            }),
            "add_rms_norm: weight [4] does not match the last dimension of x [2, 3]");
  EXPECT_EQ(error_message<ValueError>([] {
              add_rms_norm(zeros({2, 3}), zeros({2, 3}), Tensor(), -1.0);
            }),
            "add_rms_norm: eps must be finite and non-negative, got -1");
  Tensor pos = positions_of({0, 1}, {2});
  EXPECT_EQ(error_message<ShapeError>([&] {
              rope_qk(zeros({2, 4, 8}), zeros({2, 2, 6}), pos, 1e4);
            }),
            "rope_qk: q [2, 4, 8] and k [2, 2, 6] must have the same head dimension");
  EXPECT_EQ(error_message<ShapeError>([&] {
              rope_qk(zeros({2, 4, 8}), zeros({3, 2, 8}), pos, 1e4);
            }),
            "rope_qk: positions [2] do not match the leading shape [3] of x [3, 2, 8]");
  EXPECT_EQ(error_message<ValueError>([&] {
              rope_qk(zeros({2, 1, 2}), zeros({2, 1, 2}), positions_of({0, -3}, {2}), 1e4);
            }),
            "rope: position -3 at index 1 is negative");
}

}  // namespace
}  // namespace ponder
