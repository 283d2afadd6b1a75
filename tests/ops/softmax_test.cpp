#include <gtest/gtest.h>

#include <cmath>

#include "ops/ops.h"
#include "support/test_util.h"

namespace ponder {
namespace {
using testing::all_close;
using testing::gradcheck;
using testing::random_tensor;

// Softmax of an f64 tensor along `dim`, one row at a time, straight from the definition.
Tensor naive_softmax(const Tensor& x, int dim, bool log) {
  const Shape& shape = x.shape();
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < dim; ++i) outer *= shape[i];
  for (int i = dim + 1; i < x.dim(); ++i) inner *= shape[i];
  const int64_t n = shape[dim];
  std::vector<double> in = x.to_vector<double>(), out(in.size());
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      auto at = [&](int64_t k) { return (o * n + k) * inner + i; };
      double total = 0;
      for (int64_t k = 0; k < n; ++k) total += std::exp(in[at(k)]);
      for (int64_t k = 0; k < n; ++k)
        out[at(k)] = log ? in[at(k)] - std::log(total) : std::exp(in[at(k)]) / total;
    }
  }
  return tensor(out, shape, {.dtype = DType::f64});
}

TEST(Softmax, MatchesPyTorchValues) {
  Tensor x = tensor({1, 2, 3, -1, 0, 5}, {2, 3}, {.dtype = DType::f64});
  Tensor expected_softmax = tensor({0.09003057317038045, 0.24472847105479761, 0.66524095577482178,
                                    0.00245611490445095, 0.00667641251337645, 0.99086747258217256},
                                   {2, 3}, {.dtype = DType::f64});
  Tensor expected_log_softmax_dim0 =
      tensor({-0.12692801104297260, -0.12692801104297260, -2.12692801104297269, -2.12692801104297269,
              -2.12692801104297269, -0.12692801104297260},
             {2, 3}, {.dtype = DType::f64});
  EXPECT_TRUE(all_close(softmax(x), expected_softmax, 1e-14, 0));
  EXPECT_TRUE(all_close(log_softmax(x, 0), expected_log_softmax_dim0, 1e-14, 0));
}

TEST(Softmax, MatchesNaiveLoopAlongEveryDim) {
  Tensor x = random_tensor({3, 4, 5}, 1);
  for (int dim : {0, 1, 2}) {
    EXPECT_TRUE(all_close(softmax(x, dim), naive_softmax(x, dim, false), 1e-13, 1e-15)) << dim;
    EXPECT_TRUE(all_close(log_softmax(x, dim), naive_softmax(x, dim, true), 1e-13, 1e-15)) << dim;
  }
  EXPECT_TRUE(all_close(softmax(x, -1), naive_softmax(x, 2, false), 1e-13, 1e-15));
  // A non-contiguous input gives the same values as its contiguous copy.
  Tensor xt = x.transpose(0, 2);
  EXPECT_TRUE(all_close(softmax(xt, 1), naive_softmax(xt.contiguous(), 1, false), 1e-13, 1e-15));
}

TEST(Softmax, LargeInputsSplitAcrossThreadsMatchTheNaiveLoop) {
  Tensor x = random_tensor({64, 1024}, 6);  // above the kernels' threshold for threading
  EXPECT_TRUE(all_close(softmax(x), naive_softmax(x, 1, false), 1e-12, 1e-15));
  EXPECT_TRUE(all_close(log_softmax(x), naive_softmax(x, 1, true), 1e-12, 1e-15));
}

TEST(Softmax, Gradcheck) {
  Tensor x = random_tensor({2, 3, 4}, 2, DType::f64, true);
  for (int64_t dim : {0, 1, -1}) {
    EXPECT_TRUE(gradcheck([&](const TensorList& in) { return softmax(in[0], dim); }, {x})) << dim;
    EXPECT_TRUE(gradcheck([&](const TensorList& in) { return log_softmax(in[0], dim); }, {x})) << dim;
  }
  // Edge shapes: a single row, rows of one element, a 0-d tensor, a non-contiguous input.
  for (Shape shape : {Shape{7}, Shape{4, 1}, Shape{}}) {
    Tensor e = random_tensor(shape, 3, DType::f64, true);
    EXPECT_TRUE(gradcheck([](const TensorList& in) { return softmax(in[0]); }, {e})) << shape;
    EXPECT_TRUE(gradcheck([](const TensorList& in) { return log_softmax(in[0]); }, {e})) << shape;
  }
  EXPECT_TRUE(gradcheck([](const TensorList& in) { return softmax(in[0].transpose(0, 2), 1); }, {x}));
  EXPECT_TRUE(gradcheck([](const TensorList& in) { return log_softmax(in[0].transpose(0, 1), 0); }, {x}));
}

TEST(Softmax, LargeLogitsStayFinite) {
  Tensor x = tensor({1000, 1001, 1002}, {3}, {.requires_grad = true});
  Tensor y = softmax(x);
  EXPECT_TRUE(all_close(y, tensor({0.09003057317038045, 0.24472847105479761, 0.66524095577482178}, {3}),
                        1e-6, 0));
  Tensor log_y = log_softmax(x);
  EXPECT_TRUE(all_close(log_y, tensor({-2.407605964444381, -1.40760596444438, -0.40760596444438}, {3}),
                        1e-6, 0));
  (y * tensor({1, 2, 3}, {3})).sum().backward();
  for (double g : x.grad().to_vector<double>()) EXPECT_TRUE(std::isfinite(g));
}

TEST(Softmax, F32AndBf16MatchF64) {
  Tensor x = random_tensor({6, 33}, 4);
  Tensor g = random_tensor({6, 33}, 5);
  for (bool log : {false, true}) {
    auto op = [log](const Tensor& t) { return log ? log_softmax(t, 1) : softmax(t, 1); };
    for (auto [dtype, tolerance] : {std::pair{DType::f32, 1e-6}, std::pair{DType::bf16, 1e-2}}) {
      Tensor xd = x.to(dtype).detach().set_requires_grad(true);
      Tensor xr = xd.detach().to(DType::f64).set_requires_grad(true);  // the same rounded inputs
      Tensor yd = op(xd), yr = op(xr);
      EXPECT_EQ(yd.dtype(), dtype);
      EXPECT_LT(testing::relative_error(yd, yr), tolerance) << dtype_name(dtype) << " log " << log;
      Tensor gd = g.to(dtype);
      (yd * gd).sum().backward();
      (yr * gd.to(DType::f64)).sum().backward();
      EXPECT_EQ(xd.grad().dtype(), dtype);
      EXPECT_LT(testing::relative_error(xd.grad(), xr.grad()), tolerance) << dtype_name(dtype);
    }
  }
}

TEST(Softmax, EmptyTensors) {
  EXPECT_EQ(softmax(zeros({0, 3})).shape(), Shape({0, 3}));
  EXPECT_EQ(log_softmax(zeros({2, 0})).shape(), Shape({2, 0}));
  EXPECT_EQ(softmax(zeros({})).item<float>(), 1.0f);
}

TEST(Softmax, BadInputsNameTheOpAndOperand) {
  try {
    softmax(arange(0, 3));
    FAIL();
  } catch (const DTypeError& e) {
    EXPECT_STREQ(e.what(), "softmax: expected a floating tensor, got [3] i64 cpu");
  }
  try {
    log_softmax(zeros({2, 3}), 2);
    FAIL();
  } catch (const ShapeError& e) {
    EXPECT_STREQ(e.what(), "log_softmax: dimension 2 is out of range for a tensor with 2 dimensions");
  }
  EXPECT_THROW(softmax(Tensor()), ValueError);
}

}  // namespace
}  // namespace ponder
