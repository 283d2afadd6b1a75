#include <gtest/gtest.h>

#include "ops/ops.h"
#include "support/test_util.h"

namespace ponder {
namespace {
using testing::error_message;
using testing::gradcheck;
using testing::random_tensor;

using Values = std::vector<double>;

TEST(Join, CatValuesAlongEachDimension) {
  Tensor a = arange(0, 6, 1, {.dtype = DType::f64}).reshape({2, 3});
  Tensor rows = tensor({6, 7, 8}, {1, 3}, {.dtype = DType::f64});
  Tensor column = tensor({10, 11}, {2, 1}, {.dtype = DType::f64});
  Tensor down = cat({a, rows}, 0);
  EXPECT_EQ(down.shape(), Shape({3, 3}));
  EXPECT_EQ(down.to_vector<double>(), (Values{0, 1, 2, 3, 4, 5, 6, 7, 8}));
  Tensor across = cat({a, column}, -1);
  EXPECT_EQ(across.shape(), Shape({2, 4}));
  EXPECT_EQ(across.to_vector<double>(), (Values{0, 1, 2, 10, 3, 4, 5, 11}));
  EXPECT_EQ(cat({a}, 1).to_vector<double>(), a.to_vector<double>());
}

TEST(Join, CatReadsStridedInputsAndSkipsEmptyOnes) {
  Tensor a = arange(0, 6, 1, {.dtype = DType::f64}).reshape({2, 3});
  Tensor column = tensor({20, 21, 22}, {3, 1}, {.dtype = DType::f64});
  // a.t() is [[0, 3], [1, 4], [2, 5]], a transposed view.
  EXPECT_EQ(cat({a.t(), column}, 1).to_vector<double>(), (Values{0, 3, 20, 1, 4, 21, 2, 5, 22}));
  Tensor none = zeros({0, 3}, {.dtype = DType::f64});
  EXPECT_EQ(cat({none, a, none}, 0).to_vector<double>(), a.to_vector<double>());
}

TEST(Join, CatAndStackMoveEveryDtypeExactly) {
  for (DType dtype : {DType::f32, DType::f64, DType::bf16, DType::i32, DType::i64, DType::u8}) {
    Tensor a = arange(0, 4, 1, {.dtype = dtype}).reshape({2, 2});
    Tensor b = arange(4, 8, 1, {.dtype = dtype}).reshape({2, 2});
    Tensor joined = cat({a, b}, 1);
    EXPECT_EQ(joined.dtype(), dtype);
    EXPECT_EQ(joined.to_vector<double>(), (Values{0, 1, 4, 5, 2, 3, 6, 7})) << dtype_name(dtype);
    EXPECT_EQ(stack({a, b}, 0).to_vector<double>(), (Values{0, 1, 2, 3, 4, 5, 6, 7})) << dtype_name(dtype);
  }
}

TEST(Join, CatGradcheckWithOneInputWithoutGradient) {
  Tensor a = random_tensor({2, 3, 4}, 1, DType::f64, true);
  Tensor b = random_tensor({1, 3, 4}, 2, DType::f64, false);
  Tensor c = random_tensor({3, 3, 4}, 3, DType::f64, true);
  EXPECT_TRUE(gradcheck([](const TensorList& in) { return cat(in, 0); }, {a, b, c}));
  Tensor d = random_tensor({2, 3, 1}, 4, DType::f64, true);
  Tensor e = random_tensor({2, 3, 4}, 5, DType::f64, false);
  Tensor f = random_tensor({2, 3, 2}, 6, DType::f64, true);
  EXPECT_TRUE(gradcheck([](const TensorList& in) { return cat(in, -1); }, {d, e, f}));
  // Followed by an op so the gradient reaching cat is not uniform.
  Tensor w = random_tensor({6, 3, 4}, 7);
  EXPECT_TRUE(gradcheck([&](const TensorList& in) { return cat(in, 0) * w; }, {a, b, c}));

  (cat({a, b, c}, 0) * w).sum().backward();
  EXPECT_FALSE(b.grad().defined());
  EXPECT_TRUE(testing::all_close(a.grad(), w.slice(0, 0, 2), 0, 0));
  EXPECT_TRUE(testing::all_close(c.grad(), w.slice(0, 3, 6), 0, 0));
}

TEST(Join, CatOfTensorsWithoutGradientRecordsNothing) {
  Tensor a = random_tensor({2}, 1), b = random_tensor({3}, 2);
  Tensor joined = cat({a, b}, 0);
  EXPECT_FALSE(joined.requires_grad());
  EXPECT_EQ(joined.grad_fn(), nullptr);
}

TEST(Join, SplitReturnsViews) {
  Tensor x = arange(0, 10).reshape({2, 5});
  TensorList pieces = split(x, {2, 0, 3}, -1);
  ASSERT_EQ(pieces.size(), 3u);
  EXPECT_EQ(pieces[0].shape(), Shape({2, 2}));
  EXPECT_EQ(pieces[1].shape(), Shape({2, 0}));
  EXPECT_EQ(pieces[2].shape(), Shape({2, 3}));
  EXPECT_EQ(pieces[0].to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 5, 6}));
  EXPECT_EQ(pieces[2].to_vector<int64_t>(), (std::vector<int64_t>{2, 3, 4, 7, 8, 9}));
  EXPECT_EQ(pieces[2].data<int64_t>(), x.data<int64_t>() + 2);
  EXPECT_EQ(cat(pieces, 1).to_vector<int64_t>(), x.to_vector<int64_t>());
  TensorList rows = split(x, {1, 1}, 0);
  EXPECT_EQ(rows[1].to_vector<int64_t>(), (std::vector<int64_t>{5, 6, 7, 8, 9}));
}

TEST(Join, SplitGradientFlowsOnlyThroughUsedPieces) {
  Tensor x = random_tensor({4, 3}, 1, DType::f64, true);
  EXPECT_TRUE(gradcheck(
      [](const TensorList& in) {
        TensorList p = split(in[0], {1, 2, 1}, 0);
        return p[0] * p[2];
      },
      {x}));
  EXPECT_TRUE(gradcheck([](const TensorList& in) { return split(in[0], {2, 1}, 1)[1]; }, {x}));

  TensorList p = split(x, {1, 2, 1}, 0);
  (p[0].sum() + (p[2] * 2.0).sum()).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (Values{1, 1, 1, 0, 0, 0, 0, 0, 0, 2, 2, 2}));
}

TEST(Join, StackInsertsANewDimension) {
  Tensor a = random_tensor({2, 3}, 1), b = random_tensor({2, 3}, 2), c = random_tensor({2, 3}, 3);
  TensorList xs = {a, b, c};
  std::vector<Values> v = {a.to_vector<double>(), b.to_vector<double>(), c.to_vector<double>()};
  Tensor first = stack(xs, 0);
  EXPECT_EQ(first.shape(), Shape({3, 2, 3}));
  Tensor middle = stack(xs, 1);
  EXPECT_EQ(middle.shape(), Shape({2, 3, 3}));
  Tensor last = stack(xs, -1);
  EXPECT_EQ(last.shape(), Shape({2, 3, 3}));
  Values f = first.to_vector<double>(), m = middle.to_vector<double>(), l = last.to_vector<double>();
  for (int k = 0; k < 3; ++k) {
    for (int i = 0; i < 2; ++i) {
      for (int j = 0; j < 3; ++j) {
        double expected = v[k][i * 3 + j];
        EXPECT_EQ(f[(k * 2 + i) * 3 + j], expected);
        EXPECT_EQ(m[(i * 3 + k) * 3 + j], expected);
        EXPECT_EQ(l[(i * 3 + j) * 3 + k], expected);
      }
    }
  }
  Tensor scalars = stack({full({}, 1.0), full({}, 2.0)}, 0);
  EXPECT_EQ(scalars.shape(), Shape({2}));
  EXPECT_EQ(scalars.to_vector<double>(), (Values{1, 2}));
}

TEST(Join, StackGradcheck) {
  Tensor a = random_tensor({2, 3}, 1, DType::f64, true);
  Tensor b = random_tensor({2, 3}, 2, DType::f64, false);
  Tensor c = random_tensor({2, 3}, 3, DType::f64, true);
  for (int64_t dim : {0, 1, 2, -1}) {
    EXPECT_TRUE(gradcheck([dim](const TensorList& in) { return stack(in, dim); }, {a, b, c})) << dim;
  }
}

TEST(Join, BadInputsNameTheProblem) {
  EXPECT_EQ(error_message<ValueError>([] { cat({}, 0); }),
            "cat: expected at least one tensor, got an empty list");
  EXPECT_EQ(error_message<ValueError>([] { stack({}, 0); }),
            "stack: expected at least one tensor, got an empty list");
  EXPECT_EQ(error_message<ShapeError>([] { cat({zeros({2, 3}), zeros({2, 4})}, 0); }),
            "cat: tensor 1 has shape [2, 4] but tensor 0 has [2, 3]; shapes must match except in "
            "dimension 0");
  EXPECT_EQ(error_message<ShapeError>([] { cat({zeros({2, 3}), zeros({3})}, 1); }),
            "cat: tensor 1 has shape [3] but tensor 0 has [2, 3]; shapes must match except in dimension 1");
  EXPECT_EQ(error_message<ShapeError>([] { stack({zeros({2, 3}), zeros({2, 3}), zeros({3, 2})}, 0); }),
            "stack: tensor 2 has shape [3, 2] but tensor 0 has [2, 3]");
  EXPECT_EQ(error_message<DTypeError>([] { cat({zeros({2}), zeros({2}, {.dtype = DType::f64})}, 0); }),
            "cat: operands differ in dtype: [2] f32 cpu and [2] f64 cpu");
  EXPECT_EQ(error_message<ValueError>([] { cat({zeros({2}), Tensor()}, 0); }), "cat: tensor 1 is undefined");
  EXPECT_THROW(cat({zeros({2, 3})}, 2), ShapeError);
  EXPECT_THROW(stack({zeros({2, 3})}, 3), ShapeError);
  EXPECT_THROW(cat({full({}, 1.0)}, 0), ShapeError);
  EXPECT_EQ(error_message<ShapeError>([] { split(zeros({2, 5}), {2, 2}, 1); }),
            "split: sizes [2, 2] add up to 4, not to the size 5 of dimension 1 of [2, 5] f32 cpu");
  EXPECT_EQ(error_message<ValueError>([] { split(zeros({2, 5}), {6, -1}, 1); }),
            "split: sizes [6, -1] contain a negative size");
}

}  // namespace
}  // namespace ponder
