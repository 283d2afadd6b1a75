#include "ops/linear.h"

#include <functional>

#include <gtest/gtest.h>

#include "ops/ops.h"
#include "support/test_util.h"

namespace ponder {
namespace {
using testing::all_close;
using testing::error_message;
using testing::gradcheck;
using testing::random_tensor;

// y[r, o] = sum_i x[r, i] w[o, i] + b[o], over the rows r of x flattened to [R, in].
std::vector<double> naive(const Tensor& x, const Tensor& w, const Tensor& b) {
  const int64_t in = w.size(1), out = w.size(0), rows = x.numel() / in;
  std::vector<double> xv = x.to_vector<double>(), wv = w.to_vector<double>();
  std::vector<double> bv = b.defined() ? b.to_vector<double>() : std::vector<double>(out, 0.0);
  std::vector<double> y(rows * out);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double s = bv[o];
      for (int64_t i = 0; i < in; ++i) s += xv[r * in + i] * wv[o * in + i];
      y[r * out + o] = s;
    }
  return y;
}

TEST(LinearOp, MatchesANaiveLoopForAnyLeadingShape) {
  Tensor w = random_tensor({4, 3}, 1), b = random_tensor({4}, 2);
  for (Shape xs : {Shape{3}, Shape{5, 3}, Shape{2, 3, 3}, Shape{0, 3}}) {
    Tensor x = random_tensor(xs, 3);
    Shape ys = xs;
    ys[ys.size() - 1] = 4;
    EXPECT_TRUE(all_close(linear(x, w, b), tensor(naive(x, w, b), ys, {.dtype = DType::f64}), 1e-12, 1e-12)) << xs;
    EXPECT_TRUE(all_close(linear(x, w), tensor(naive(x, w, {}), ys, {.dtype = DType::f64}), 1e-12, 1e-12)) << xs;
  }
}

TEST(LinearOp, NonContiguousOperands) {
  Tensor x = random_tensor({3, 6}, 1).t(), w = random_tensor({3, 4}, 2).t();  // [6, 3] and [4, 3]
  EXPECT_TRUE(all_close(linear(x, w), linear(x.contiguous(), w.contiguous()), 1e-12, 1e-12));
}

TEST(LinearOp, Gradcheck) {
  for (Shape xs : {Shape{3}, Shape{5, 3}, Shape{2, 2, 3}}) {
    Tensor x = random_tensor(xs, 1, DType::f64, true);
    Tensor w = random_tensor({4, 3}, 2, DType::f64, true), b = random_tensor({4}, 3, DType::f64, true);
    EXPECT_TRUE(gradcheck([](const TensorList& in) { return linear(in[0], in[1], in[2]); }, {x, w, b})) << xs;
    EXPECT_TRUE(gradcheck([](const TensorList& in) { return linear(in[0], in[1]); }, {x, w})) << xs;
  }
}

TEST(LinearOp, GradcheckWithFrozenOperandsAndViews) {
  Tensor x = random_tensor({3, 2, 5}, 1, DType::f64, true), w = random_tensor({4, 3}, 2, DType::f64, true);
  Tensor b = random_tensor({4}, 3, DType::f64, true);
  Tensor x_frozen = random_tensor({2, 3}, 4), w_frozen = random_tensor({4, 3}, 5), b_frozen = random_tensor({4}, 6);
  auto views = [](const TensorList& in) { return linear(in[0].transpose(0, 2), in[1], in[2]); };  // x [5, 2, 3]
  EXPECT_TRUE(gradcheck(views, {x, w, b}));
  auto dense = [](const TensorList& in) { return linear(in[0], in[1], in[2]); };
  EXPECT_TRUE(gradcheck(dense, {x_frozen, w, b_frozen}));
  EXPECT_TRUE(gradcheck(dense, {x_frozen, w_frozen, b}));
  Tensor x2 = random_tensor({2, 3}, 7, DType::f64, true);
  EXPECT_TRUE(gradcheck(dense, {x2, w_frozen, b_frozen}));
}

TEST(LinearOp, IsOneNodeWhoseGradientsMatchTheComposition) {
  Tensor x = random_tensor({2, 3, 5}, 1, DType::f64, true), w = random_tensor({4, 5}, 2, DType::f64, true);
  Tensor b = random_tensor({4}, 3, DType::f64, true);
  Tensor y = linear(x, w, b);
  EXPECT_STREQ(y.grad_fn()->name(), "linear");
  Tensor g = random_tensor({2, 3, 4}, 4);
  y.backward(g);
  Tensor g2 = g.reshape({6, 4});
  EXPECT_TRUE(all_close(x.grad(), matmul(g2, w).reshape({2, 3, 5}), 1e-12, 1e-12));
  EXPECT_TRUE(all_close(w.grad(), matmul(g2.t(), x.reshape({6, 5})), 1e-12, 1e-12));
  EXPECT_TRUE(all_close(b.grad(), g2.sum({0}), 1e-12, 1e-12));
}

TEST(LinearOp, ZeroInputWidthGivesTheBias) {
  Tensor x = random_tensor({3, 0}, 1, DType::f64, true), w = random_tensor({4, 0}, 2, DType::f64, true);
  Tensor b = random_tensor({4}, 3, DType::f64, true);
  Tensor y = linear(x, w, b);
  EXPECT_TRUE(all_close(y, b.expand({3, 4}), 0, 0));
  y.backward(ones({3, 4}, {.dtype = DType::f64}));
  EXPECT_EQ(x.grad().shape(), Shape({3, 0}));
  EXPECT_EQ(w.grad().shape(), Shape({4, 0}));
  EXPECT_TRUE(all_close(b.grad(), full({4}, 3.0, {.dtype = DType::f64}), 0, 0));
}

TEST(LinearOp, F32AndBf16AreCloseToF64) {
  Tensor x = random_tensor({9, 33}, 1), w = random_tensor({17, 33}, 2), b = random_tensor({17}, 3);
  Tensor ref = linear(x, w, b);
  EXPECT_LT(testing::relative_error(linear(x.to(DType::f32), w.to(DType::f32), b.to(DType::f32)), ref), 1e-6);
  EXPECT_LT(testing::relative_error(linear(x.to(DType::bf16), w.to(DType::bf16), b.to(DType::bf16)), ref), 1e-2);
}

TEST(LinearOp, BadOperandsAreRejected) {
  Tensor x = zeros({2, 3}), w = zeros({4, 3});
  EXPECT_EQ(error_message<ShapeError>([&] { linear(zeros({2, 5}), w); }),
            "linear: the last dimension of x [2, 5] f32 cpu does not match the input width of weight [4, 3] f32 cpu");
  EXPECT_EQ(error_message<ShapeError>([&] { linear(x, zeros({12})); }),
            "linear: weight must be [out, in], got [12] f32 cpu");
  EXPECT_EQ(error_message<ShapeError>([&] { linear(x, w, zeros({3})); }),
            "linear: bias [3] f32 cpu does not match the output width of weight [4, 3] f32 cpu");
  EXPECT_THROW(linear(x, w.to(DType::f64)), DTypeError);
  EXPECT_THROW(linear(x, w, zeros({4}, {.dtype = DType::f64})), DTypeError);
  EXPECT_THROW(linear(zeros({2, 3}, {.dtype = DType::i64}), w), DTypeError);
}

// The group's outputs side by side, for gradcheck and the twins: x [.., 3] through weights of
// 4, 2 and 4 outputs.
Tensor grouped(const TensorList& in) { return cat(linear_group(in[0], {in[1], in[2], in[3]}), -1); }
Tensor separate(const TensorList& in) {
  return cat({linear(in[0], in[1]), linear(in[0], in[2]), linear(in[0], in[3])}, -1);
}

TensorList group_inputs(const Shape& x_shape, bool grad = true) {
  return {random_tensor(x_shape, 1, DType::f64, grad), random_tensor({4, 3}, 2, DType::f64, grad),
          random_tensor({2, 3}, 3, DType::f64, grad), random_tensor({4, 3}, 4, DType::f64, grad)};
}

// Gradients of every input of f at `inputs`, for the upstream gradient g.
TensorList gradients(const std::function<Tensor(const TensorList&)>& f, const TensorList& inputs, const Tensor& g) {
  TensorList leaves;
  for (const Tensor& t : inputs) leaves.push_back(t.detach().clone().set_requires_grad(t.requires_grad()));
  f(leaves).backward(g);
  TensorList grads;
  for (const Tensor& t : leaves) grads.push_back(t.grad());
  return grads;
}

TEST(LinearGroup, IsOneNodeWithTheValuesAndGradientsOfSeparateLinears) {
  for (Shape xs : {Shape{3}, Shape{5, 3}, Shape{2, 4, 3}, Shape{0, 3}}) {
    const TensorList in = group_inputs(xs);
    const TensorList ys = linear_group(in[0], {in[1], in[2], in[3]});
    ASSERT_EQ(ys.size(), 3u);
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_STREQ(ys[i].grad_fn()->name(), "linear_group");
      EXPECT_TRUE(all_close(ys[i], linear(in[0], in[i + 1]), 0, 0)) << xs;
    }
    Shape gs = xs;
    gs[gs.size() - 1] = 10;
    const Tensor g = random_tensor(gs, 5);
    const TensorList got = gradients(grouped, in, g), want = gradients(separate, in, g);
    for (size_t i = 0; i < in.size(); ++i) {
      EXPECT_TRUE(all_close(got[i], want[i], 1e-12, 1e-12)) << xs << " input " << i;
    }
  }
}

TEST(LinearGroup, Gradcheck) {
  for (Shape xs : {Shape{3}, Shape{5, 3}, Shape{2, 2, 3}}) EXPECT_TRUE(gradcheck(grouped, group_inputs(xs))) << xs;
  TensorList frozen_x = group_inputs({5, 3});
  frozen_x[0] = frozen_x[0].detach();
  EXPECT_TRUE(gradcheck(grouped, frozen_x));
  TensorList frozen_middle = group_inputs({5, 3});
  frozen_middle[2] = frozen_middle[2].detach();
  EXPECT_TRUE(gradcheck(grouped, frozen_middle));
}

// Outputs that get no gradient contribute nothing: x's gradient comes from the used ones, the
// unused weight gets none, and with no output used x's gradient is zero.
TEST(LinearGroup, UnusedOutputs) {
  const TensorList in = group_inputs({5, 3});
  TensorList ys = linear_group(in[0], {in[1], in[2], in[3]});
  const Tensor g = random_tensor({5, 2}, 5);
  ys[1].backward(g);
  EXPECT_TRUE(all_close(in[0].grad(), matmul(g, in[2]), 1e-12, 1e-12));
  EXPECT_FALSE(in[1].grad().defined());
  EXPECT_FALSE(in[3].grad().defined());
  EXPECT_TRUE(all_close(in[2].grad(), matmul(g.t(), in[0]), 1e-12, 1e-12));
}

// The engine's accumulation targets, in the order backward meets the uses: x's last linear
// starts x's and w3's gradients; the second group then adds w3's (one weight into a target, two
// fresh); w1's plain use and the first group add into gradients that all exist by then.
TEST(LinearGroup, SharedWeightsAndInputsAccumulate) {
  auto shared = [](const TensorList& in) {
    const Tensor &x = in[0], &w1 = in[1], &w2 = in[2], &w3 = in[3];
    const TensorList first = linear_group(x, {w1, w2, w3});
    const TensorList second = linear_group(linear(first[0], w1.t()), {w1, w2, w3});
    return cat({second[0], second[1], second[2], first[1], first[2], linear(x, w3)}, -1);
  };
  EXPECT_TRUE(gradcheck(shared, group_inputs({5, 3})));
}

TEST(LinearGroup, BadOperandsAreRejected) {
  Tensor x = zeros({2, 3});
  EXPECT_EQ(error_message<ValueError>([&] { linear_group(x, {}); }), "linear_group: no weights");
  EXPECT_EQ(error_message<ShapeError>([&] { linear_group(x, {zeros({4, 3}), zeros({4, 5})}); }),
            "linear: the last dimension of x [2, 3] f32 cpu does not match the input width of weight [4, 5] f32 cpu");
  EXPECT_THROW(linear_group(x, {zeros({4, 3}), zeros({4, 3}, {.dtype = DType::f64})}), DTypeError);
}

}  // namespace
}  // namespace ponder
