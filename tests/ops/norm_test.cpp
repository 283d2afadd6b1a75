#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>

#include "ops/ops.h"
#include "support/test_util.h"
#include "tensor/allocator.h"

namespace ponder {
namespace {
using testing::all_close;
using testing::gradcheck;
using testing::random_tensor;
using testing::relative_error;

// Plain loops over the rows of x in f64; `centered` selects LayerNorm, else RMSNorm. Undefined
// weight/bias are left out.
Tensor naive_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps, bool centered) {
  const int64_t d = x.shape().back(), rows = x.numel() / d;
  std::vector<double> in = x.to_vector<double>(), out(in.size());
  std::vector<double> w = weight.defined() ? weight.to_vector<double>() : std::vector<double>(d, 1.0);
  std::vector<double> b = bias.defined() ? bias.to_vector<double>() : std::vector<double>(d, 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    double mean = 0, var = 0;
    if (centered) {
      for (int64_t i = 0; i < d; ++i) mean += in[r * d + i] / double(d);
    }
    for (int64_t i = 0; i < d; ++i) var += (in[r * d + i] - mean) * (in[r * d + i] - mean) / double(d);
    for (int64_t i = 0; i < d; ++i) out[r * d + i] = (in[r * d + i] - mean) / std::sqrt(var + eps) * w[i] + b[i];
  }
  return tensor(out, x.shape(), {.dtype = DType::f64});
}

const std::vector<Shape> kShapes = {{1, 1}, {5}, {3, 7}, {2, 3, 8}, {4, 1}};

TEST(RmsNorm, MatchesNaiveLoops) {
  for (const Shape& shape : kShapes) {
    Tensor x = random_tensor(shape, 1);
    Tensor w = random_tensor({shape.back()}, 2);
    EXPECT_TRUE(all_close(rms_norm(x, w, 1e-6), naive_norm(x, w, {}, 1e-6, false), 1e-12, 1e-12)) << shape;
    EXPECT_TRUE(all_close(rms_norm(x, {}, 1e-5), naive_norm(x, {}, {}, 1e-5, false), 1e-12, 1e-12)) << shape;
  }
}

TEST(LayerNorm, MatchesNaiveLoops) {
  for (const Shape& shape : kShapes) {
    Tensor x = random_tensor(shape, 1);
    Tensor w = random_tensor({shape.back()}, 2), b = random_tensor({shape.back()}, 3);
    EXPECT_TRUE(all_close(layer_norm(x, w, b, 1e-5), naive_norm(x, w, b, 1e-5, true), 1e-12, 1e-12)) << shape;
    EXPECT_TRUE(all_close(layer_norm(x, w, {}, 1e-5), naive_norm(x, w, {}, 1e-5, true), 1e-12, 1e-12)) << shape;
    EXPECT_TRUE(all_close(layer_norm(x, {}, b, 1e-5), naive_norm(x, {}, b, 1e-5, true), 1e-12, 1e-12)) << shape;
    EXPECT_TRUE(all_close(layer_norm(x, {}, {}, 1e-5), naive_norm(x, {}, {}, 1e-5, true), 1e-12, 1e-12)) << shape;
  }
}

TEST(Norms, MatchPyTorchValues) {
  // torch.nn.functional.layer_norm(x, (4,), w, b, 1e-5) and x * rsqrt(mean(x^2) + 1e-6) * w in f64.
  Tensor x = tensor({1, 2, 3, 4, -1, 0, 2, 5}, {2, 4}, {.dtype = DType::f64});
  Tensor w = tensor({0.5, 1, 1.5, 2}, {4}, {.dtype = DType::f64});
  Tensor b = tensor({0.1, -0.2, 0.3, 0}, {4}, {.dtype = DType::f64});
  Tensor ln = tensor({-0.5708177099844636, -0.6472118066563091, 0.9708177099844633, 2.6832708399378538,
                      -0.4455442060243179, -0.8546530472291813, 0.6273265236145907, 3.05504755373618},
                     {2, 4}, {.dtype = DType::f64});
  Tensor rms = tensor({0.1825741736634442, 0.7302966946537768, 1.6431675629709979, 2.921186778615107,
                       -0.1825741736634442, 0.0, 1.0954450419806652, 3.651483473268884},
                      {2, 4}, {.dtype = DType::f64});
  EXPECT_TRUE(all_close(layer_norm(x, w, b, 1e-5), ln, 1e-13, 1e-14));
  EXPECT_TRUE(all_close(rms_norm(x, w, 1e-6), rms, 1e-13, 1e-14));
}

TEST(Norms, LargeInputsTakeTheParallelPathAndMatch) {
  Tensor x = random_tensor({300, 130}, 1);
  Tensor w = random_tensor({130}, 2), b = random_tensor({130}, 3);
  EXPECT_TRUE(all_close(rms_norm(x, w, 1e-6), naive_norm(x, w, {}, 1e-6, false), 1e-12, 1e-12));
  EXPECT_TRUE(all_close(layer_norm(x, w, b, 1e-5), naive_norm(x, w, b, 1e-5, true), 1e-12, 1e-12));
}

TEST(Norms, StridedInputEqualsContiguous) {
  Tensor x = random_tensor({6, 4}, 1).t();  // [4, 6], not contiguous
  Tensor w = random_tensor({12}, 2).slice(0, 0, 12, 2);
  EXPECT_TRUE(all_close(rms_norm(x, w, 1e-6), rms_norm(x.contiguous(), w.contiguous(), 1e-6), 0, 0));
  EXPECT_TRUE(all_close(layer_norm(x, w, w, 1e-5), layer_norm(x.contiguous(), w.contiguous(), w.contiguous(), 1e-5), 0, 0));
}

TEST(RmsNorm, Gradcheck) {
  for (const Shape& shape : kShapes) {
    Tensor x = random_tensor(shape, 1, DType::f64, true);
    Tensor w = random_tensor({shape.back()}, 2, DType::f64, true);
    EXPECT_TRUE(gradcheck([](const TensorList& in) { return rms_norm(in[0], in[1], 1e-6); }, {x, w})) << shape;
    EXPECT_TRUE(gradcheck([](const TensorList& in) { return rms_norm(in[0], Tensor(), 1e-6); }, {x})) << shape;
  }
}

// What backward keeps beyond the output (which the next op keeps anyway): the input of a weighted
// norm, only the per-row statistics of an unweighted one.
TEST(RmsNorm, UnweightedNormKeepsItsOutputNotItsInput) {
  const int64_t rows = 64, d = 256, bytes = rows * d * 4;
  for (bool weighted : {true, false}) {
    Tensor w = weighted ? random_tensor({d}, 2, DType::f32, true) : Tensor();
    Tensor leaf = random_tensor({rows, d}, 1, DType::f32, true);  // held by its gradient's accumulator
    const int64_t before = memory_stats(Device::cpu()).current_bytes;
    Tensor y = rms_norm(leaf + 1.0, w, 1e-6);  // an input nothing else keeps, like the residual stream
    const int64_t kept = memory_stats(Device::cpu()).current_bytes - before - bytes;
    const int64_t statistics = rows * 8;  // f64 inverse RMS per row
    EXPECT_EQ(kept, (weighted ? bytes : 0) + statistics) << weighted;
    y.backward(ones_like(y));
  }
}

TEST(LayerNorm, Gradcheck) {
  for (const Shape& shape : kShapes) {
    Tensor x = random_tensor(shape, 1, DType::f64, true);
    Tensor w = random_tensor({shape.back()}, 2, DType::f64, true);
    Tensor b = random_tensor({shape.back()}, 3, DType::f64, true);
    EXPECT_TRUE(gradcheck([](const TensorList& in) { return layer_norm(in[0], in[1], in[2], 1e-5); }, {x, w, b}))
        << shape;
    EXPECT_TRUE(gradcheck([](const TensorList& in) { return layer_norm(in[0], in[1], Tensor(), 1e-5); }, {x, w}))
        << shape;
    EXPECT_TRUE(gradcheck([](const TensorList& in) { return layer_norm(in[0], Tensor(), in[1], 1e-5); }, {x, b}))
        << shape;
    EXPECT_TRUE(gradcheck([](const TensorList& in) { return layer_norm(in[0], Tensor(), Tensor(), 1e-5); }, {x}))
        << shape;
  }
}

TEST(Norms, GradcheckThroughAStridedInput) {
  Tensor x = random_tensor({5, 3}, 1, DType::f64, true);
  Tensor w = random_tensor({5}, 2, DType::f64, true);
  EXPECT_TRUE(gradcheck([](const TensorList& in) { return rms_norm(in[0].t(), in[1], 1e-6); }, {x, w}));
  EXPECT_TRUE(gradcheck([](const TensorList& in) { return layer_norm(in[0].t(), in[1], in[1], 1e-5); }, {x, w}));
}

TEST(Norms, OnlyTheParametersNeedGrad) {
  Tensor x = random_tensor({3, 4}, 1);
  Tensor w = random_tensor({4}, 2, DType::f64, true), b = random_tensor({4}, 3, DType::f64, true);
  layer_norm(x, w, b, 1e-5).sum().backward();
  EXPECT_TRUE(all_close(b.grad(), full({4}, 3.0, {.dtype = DType::f64}), 0, 1e-12));  // dbias = sum of g
  Tensor xhat = naive_norm(x, {}, {}, 1e-5, true);
  EXPECT_TRUE(all_close(w.grad(), xhat.sum({0}), 1e-12, 1e-12));  // dweight = sum of g * xhat
  Tensor v = w.detach().clone().set_requires_grad(true);
  rms_norm(x, v, 1e-5).sum().backward();
  EXPECT_TRUE(all_close(v.grad(), naive_norm(x, {}, {}, 1e-5, false).sum({0}), 1e-12, 1e-12));
}

TEST(Norms, ParameterGradientsDoNotDependOnTheThreadCount) {
  Tensor x = random_tensor({700, 96}, 1, DType::f32, true);
  Tensor w = random_tensor({96}, 2, DType::f32, true), b = random_tensor({96}, 3, DType::f32, true);
  Tensor g = random_tensor({700, 96}, 4, DType::f32);
  auto grads = [&](int threads) {
    int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    TensorList out = autograd::grad({layer_norm(x, w, b, 1e-5)}, {x, w, b}, {g});
    omp_set_num_threads(saved);
    return out;
  };
  TensorList one = grads(1), many = grads(4);
  for (size_t i = 0; i < one.size(); ++i) EXPECT_EQ(one[i].to_vector<float>(), many[i].to_vector<float>());
}

TEST(Norms, F32AndBf16AreCloseToF64) {
  Tensor x = random_tensor({9, 33}, 1), w = random_tensor({33}, 2), b = random_tensor({33}, 3);
  Tensor g = random_tensor({9, 33}, 4);
  for (bool centered : {false, true}) {
    auto run = [&](DType dt) {
      Tensor xd = x.to(dt).detach().set_requires_grad(true), wd = w.to(dt).detach().set_requires_grad(true);
      Tensor y = centered ? layer_norm(xd, wd, b.to(dt), 1e-5) : rms_norm(xd, wd, 1e-6);
      TensorList grads = autograd::grad({y}, {xd, wd}, {g.to(dt)});
      return TensorList{y, grads[0], grads[1]};
    };
    TensorList ref = run(DType::f64), f32 = run(DType::f32), bf16 = run(DType::bf16);
    for (size_t i = 0; i < ref.size(); ++i) {
      EXPECT_EQ(f32[i].dtype(), DType::f32);
      EXPECT_EQ(bf16[i].dtype(), DType::bf16);
      EXPECT_LT(relative_error(f32[i], ref[i]), 1e-6) << "centered " << centered << " output " << i;
      EXPECT_LT(relative_error(bf16[i], ref[i]), 1e-2) << "centered " << centered << " output " << i;
    }
  }
}

TEST(Norms, ConstantRowsNormaliseToZero) {
  Tensor x = full({2, 5}, 3.0, {.dtype = DType::f64});
  EXPECT_TRUE(all_close(layer_norm(x, {}, {}, 1e-5), zeros({2, 5}, {.dtype = DType::f64}), 0, 0));
  Tensor z = zeros({2, 5}, {.dtype = DType::f64});
  EXPECT_TRUE(all_close(rms_norm(z, {}, 1e-6), z, 0, 0));
}

TEST(Norms, BadInputsNameTheOperands) {
  Tensor x = zeros({2, 3, 8});
  EXPECT_EQ(testing::error_message<ShapeError>([&] { rms_norm(x, zeros({7}), 1e-6); }),
            "rms_norm: weight [7] does not match the last dimension of x [2, 3, 8]");
  EXPECT_EQ(testing::error_message<ShapeError>([&] { layer_norm(x, zeros({8}), zeros({2, 8}), 1e-5); }),
            "layer_norm: bias [2, 8] does not match the last dimension of x [2, 3, 8]");
  EXPECT_EQ(testing::error_message<ShapeError>([&] { rms_norm(zeros({}), {}, 1e-6); }),
            "rms_norm: x must have at least one dimension, got [] f32 cpu");
  EXPECT_EQ(testing::error_message<ValueError>([&] { layer_norm(x, {}, {}, -1.0); }),
            "layer_norm: eps must be finite and non-negative, got -1");
  EXPECT_THROW(rms_norm(x, zeros({8}, {.dtype = DType::f64}), 1e-6), DTypeError);
  EXPECT_THROW(rms_norm(arange(0, 4), {}, 1e-6), DTypeError);
}

}  // namespace
}  // namespace ponder
