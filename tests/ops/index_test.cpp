#include <gtest/gtest.h>

#include "ops/ops.h"
#include "support/test_util.h"

namespace ponder {
namespace {
using testing::all_close;
using testing::error_message;
using testing::gradcheck;
using testing::random_tensor;

using Values = std::vector<double>;

Tensor index_of(const std::vector<double>& values, DType dtype = DType::i64) {
  return tensor(values, {static_cast<int64_t>(values.size())}, {.dtype = dtype});
}

// index_select of a 3-D tensor by nested loops over the output.
Values naive_index_select_3d(const Tensor& x, int dim, const std::vector<int64_t>& index) {
  Values xs = x.contiguous().to_vector<double>();
  Shape in = x.shape(), out = in;
  out[dim] = static_cast<int64_t>(index.size());
  Values result;
  for (int64_t i = 0; i < out[0]; ++i) {
    for (int64_t j = 0; j < out[1]; ++j) {
      for (int64_t k = 0; k < out[2]; ++k) {
        int64_t at[3] = {i, j, k};
        at[dim] = index[at[dim]];
        result.push_back(xs[(at[0] * in[1] + at[1]) * in[2] + at[2]]);
      }
    }
  }
  return result;
}

TEST(IndexSelect, PicksRowsAndColumns) {
  Tensor x = arange(0, 12, 1, {.dtype = DType::f64}).reshape({3, 4});
  Tensor rows = index_select(x, 0, index_of({2, 0, 2}));
  EXPECT_EQ(rows.shape(), Shape({3, 4}));
  EXPECT_EQ(rows.to_vector<double>(), (Values{8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11}));
  Tensor columns = index_select(x, -1, index_of({3, 1}, DType::i32));
  EXPECT_EQ(columns.shape(), Shape({3, 2}));
  EXPECT_EQ(columns.to_vector<double>(), (Values{3, 1, 7, 5, 11, 9}));
  Tensor none = index_select(x, 1, index_of({}));
  EXPECT_EQ(none.shape(), Shape({3, 0}));
}

TEST(IndexSelect, ReadsAnyStridesAndMatchesNaiveLoops) {
  Tensor x = arange(0, 12, 1, {.dtype = DType::f64}).reshape({3, 4});
  // x.t() is [4, 3]; its column 1 is x's row 1.
  Tensor column = index_select(x.t(), 1, index_of({1}));
  EXPECT_EQ(column.shape(), Shape({4, 1}));
  EXPECT_EQ(column.to_vector<double>(), (Values{4, 5, 6, 7}));

  Tensor permuted = random_tensor({3, 4, 5}, 1).permute({2, 0, 1});  // [5, 3, 4], not contiguous
  Tensor strided = random_tensor({5, 6, 8}, 2).slice(1, 1, 6, 2).slice(2, 0, 8, 2);  // [5, 3, 4]
  std::vector<int64_t> index = {4, 0, 2, 2, 1, 4};
  for (const Tensor& t : {permuted, strided}) {
    for (int dim = 0; dim < 3; ++dim) {
      std::vector<int64_t> in_range;
      for (int64_t i : index) in_range.push_back(i % t.size(dim));
      Tensor idx = tensor(Values(in_range.begin(), in_range.end()), {6}, {.dtype = DType::i64});
      EXPECT_EQ(index_select(t, dim, idx).to_vector<double>(), naive_index_select_3d(t, dim, in_range))
          << "dim " << dim;
    }
  }
}

TEST(IndexSelect, MovesEveryDtypeExactly) {
  for (DType dtype : {DType::f32, DType::f64, DType::bf16, DType::i32, DType::i64, DType::u8}) {
    Tensor x = arange(0, 6, 1, {.dtype = dtype}).reshape({2, 3});
    Tensor out = index_select(x, 1, index_of({2, 2, 0}));
    EXPECT_EQ(out.dtype(), dtype);
    EXPECT_EQ(out.to_vector<double>(), (Values{2, 2, 0, 5, 5, 3})) << dtype_name(dtype);
  }
}

TEST(IndexSelect, GradcheckWithRepeatedIndices) {
  Tensor x = random_tensor({4, 3}, 1, DType::f64, true);
  EXPECT_TRUE(gradcheck([](const TensorList& in) { return index_select(in[0], 0, index_of({1, 3, 1, 1, 0})); },
                        {x}));
  EXPECT_TRUE(gradcheck([](const TensorList& in) { return index_select(in[0], 1, index_of({2, 2, 0})); }, {x}));
  Tensor cube = random_tensor({2, 5, 3}, 2, DType::f64, true);
  EXPECT_TRUE(gradcheck(
      [](const TensorList& in) { return index_select(in[0], 1, index_of({4, 4, 0, 2, 4}, DType::i32)); }, {cube}));
  EXPECT_TRUE(gradcheck([](const TensorList& in) { return index_select(in[0], 2, index_of({1})); }, {cube}));
}

TEST(IndexSelect, RepeatedIndicesAccumulateTheirGradients) {
  Tensor x = zeros({4, 2}, {.dtype = DType::f64, .requires_grad = true});
  Tensor w = tensor({1, 2, 3, 4, 5, 6}, {3, 2}, {.dtype = DType::f64});
  (index_select(x, 0, index_of({1, 3, 1})) * w).sum().backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (Values{0, 0, 6, 8, 0, 0, 3, 4}));

  // 300 ones sum to 300 exactly only when bf16 gradients accumulate in a wider type.
  Tensor b = zeros({2, 1}, {.dtype = DType::bf16, .requires_grad = true});
  index_select(b, 0, index_of(Values(300, 1.0))).sum().backward();
  EXPECT_EQ(b.grad().to_vector<double>(), (Values{0, 300}));
}

TEST(IndexSelect, LargeBackwardMatchesNaiveSumsAndIsDeterministic) {
  const int64_t rows = 1000, width = 64, picks = 2000;
  Values index_values;
  for (int64_t j = 0; j < picks; ++j) index_values.push_back(static_cast<double>((j * 7919) % rows % 37));
  Tensor index = index_of(index_values);
  Tensor x = random_tensor({rows, width}, 1, DType::f32, true);
  Tensor g = random_tensor({picks, width}, 2, DType::f32);
  auto gradient = [&] {
    return autograd::grad({index_select(x, 0, index)}, {x}, {g})[0];
  };
  Tensor first = gradient(), second = gradient();
  EXPECT_EQ(first.to_vector<float>(), second.to_vector<float>());

  Values gv = g.to_vector<double>(), expected(rows * width, 0.0);
  for (int64_t j = 0; j < picks; ++j) {
    for (int64_t i = 0; i < width; ++i) expected[static_cast<int64_t>(index_values[j]) * width + i] += gv[j * width + i];
  }
  EXPECT_TRUE(all_close(first, tensor(expected, {rows, width}, {.dtype = DType::f64}), 1e-6, 1e-6));
}

TEST(IndexSelect, BadInputsNameTheProblem) {
  Tensor x = zeros({3, 2});
  EXPECT_EQ(error_message<ValueError>([&] { index_select(x, 0, index_of({0, 5, 1})); }),
            "index_select: index 5 at position 1 is out of range for dimension 0 of size 3");
  EXPECT_EQ(error_message<ValueError>([&] { index_select(x, 1, index_of({-1}, DType::i32)); }),
            "index_select: index -1 at position 0 is out of range for dimension 1 of size 2");
  EXPECT_EQ(error_message<DTypeError>([&] { index_select(x, 0, zeros({2})); }),
            "index_select: index must be i32 or i64, got [2] f32 cpu");
  EXPECT_EQ(error_message<ShapeError>([&] { index_select(x, 0, zeros({1, 1}, {.dtype = DType::i64})); }),
            "index_select: index must be 1-D, got [1, 1] i64 cpu");
  EXPECT_THROW(index_select(x, 2, index_of({0})), ShapeError);
  EXPECT_THROW(index_select(full({}, 1.0), 0, index_of({0})), ShapeError);
}

}  // namespace
}  // namespace ponder
