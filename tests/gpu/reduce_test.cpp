// CUDA reductions against their CPU twins.
#include <cmath>
#include <limits>

#include "gpu/twin.h"
#include "support/test_util.h"

namespace ponder {
namespace {
using testing::cuda_matches_cpu;
using testing::random_tensor;
using testing::twin_tolerance;

using Reduce = testing::CudaTwin;

const DType kFloating[] = {DType::f32, DType::bf16, DType::f64};

Tensor on_gpu(const Tensor& t) { return t.to(Device::cuda(0)); }

template <class T>
std::vector<T> on_host(const Tensor& t) {
  return t.to(Device::cpu()).to_vector<T>();
}

// Every set of dims of an ndim tensor; the empty set reduces all dims, as in the ops.
std::vector<IntVec> every_dim_set(int ndim) {
  std::vector<IntVec> sets;
  for (int mask = 0; mask < (1 << ndim); ++mask) {
    IntVec dims;
    for (int d = 0; d < ndim; ++d)
      if (mask & (1 << d)) dims.push_back(d);
    sets.push_back(dims);
  }
  return sets;
}

std::string dims_str(const IntVec& dims) {
  std::string s = "dims {";
  for (int64_t d : dims) s += std::to_string(d) + " ";
  return s + "}";
}

// sum, mean, amax and norm of x over `dims`, forward and backward, on both devices.
void expect_reductions_match(const Tensor& x, const IntVec& dims, const std::function<Tensor(const Tensor&)>& view) {
  const double tol = twin_tolerance(x.dtype());
  EXPECT_TRUE(cuda_matches_cpu([&](const TensorList& in) { return sum(view(in[0]), dims); }, {x}, tol))
      << "sum " << dims_str(dims) << " " << describe(x);
  EXPECT_TRUE(cuda_matches_cpu([&](const TensorList& in) { return mean(view(in[0]), dims, true); }, {x}, tol))
      << "mean " << dims_str(dims) << " " << describe(x);
  EXPECT_TRUE(cuda_matches_cpu([&](const TensorList& in) { return amax(view(in[0]), dims); }, {x}, tol))
      << "amax " << dims_str(dims) << " " << describe(x);
  EXPECT_TRUE(cuda_matches_cpu([&](const TensorList& in) { return norm(view(in[0]), dims); }, {x}, tol))
      << "norm " << dims_str(dims) << " " << describe(x);
}

Tensor itself(const Tensor& t) { return t; }

TEST_F(Reduce, EveryDimSetOfA3dAndA4dTensor) {
  // Odd sizes; inner extents of 33 and 40+ take the column kernel, the others the row kernels or
  // the copy with reduced dims last.
  for (DType dt : kFloating) {
    for (Shape shape : {Shape{5, 37, 33}, Shape{3, 5, 7, 40}}) {
      Tensor x = random_tensor(shape, 1, dt, true);
      for (const IntVec& dims : every_dim_set(shape.size())) expect_reductions_match(x, dims, itself);
    }
  }
}

TEST_F(Reduce, StridedInputs) {
  for (DType dt : {DType::f32, DType::bf16}) {
    Tensor x = random_tensor({40, 9, 70}, 2, dt, true);
    const std::function<Tensor(const Tensor&)> views[] = {
        [](const Tensor& t) { return t.transpose(0, 2); },
        [](const Tensor& t) { return t.slice(2, 1, 70, 2); },
        [](const Tensor& t) { return t.permute({1, 2, 0}).slice(0, 2, 9); },
    };
    for (const auto& view : views) {
      for (const IntVec& dims : every_dim_set(3)) expect_reductions_match(x, dims, view);
    }
  }
}

TEST_F(Reduce, LongRowsAndLongColumns) {
  // rows split over blocks (few long rows), a block per row, one row of 2^20, long columns
  const std::pair<Shape, IntVec> cases[] = {
      {{3, 50001}, {1}}, {{300, 3000}, {1}},   {{1 << 20}, {}},
      {{5000, 64}, {0}}, {{2, 3001, 40}, {1}}, {{7, 9000, 5}, {1}},
  };
  for (DType dt : {DType::f32, DType::bf16}) {
    for (const auto& [shape, dims] : cases) {
      Tensor x = random_tensor(shape, 3, dt, true);
      expect_reductions_match(x, dims, itself);
      if (dims.size() == 1) {
        EXPECT_EQ(on_host<int64_t>(argmax(on_gpu(x), dims[0])), argmax(x, dims[0]).to_vector<int64_t>())
            << describe(x);
      }
    }
  }
}

TEST_F(Reduce, ArgmaxIsExactAlongEveryDim) {
  for (DType dt : {DType::f32, DType::bf16, DType::f64, DType::i32}) {
    // i32 values in [-2, 2] tie often: the first maximum must win on both devices
    Tensor x = dt == DType::i32 ? random_tensor({5, 37, 33}, 4).to(dt) : random_tensor({5, 37, 33}, 4, dt);
    for (int64_t dim : {0, 1, 2}) {
      EXPECT_EQ(on_host<int64_t>(argmax(on_gpu(x), dim)), argmax(x, dim).to_vector<int64_t>()) << dtype_name(dt);
      EXPECT_EQ(on_host<int64_t>(argmax(on_gpu(x).transpose(0, 2), dim)),
                argmax(x.transpose(0, 2), dim).to_vector<int64_t>())
          << dtype_name(dt);
    }
  }
}

TEST_F(Reduce, NanWinsAtItsFirstPosition) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  // rows: NaNs at 1500 and 1700 of row 0, at 5 of row 1, none in row 2
  std::vector<double> v = random_tensor({3, 2000}, 5).to_vector<double>();
  v[1500] = v[1700] = v[2000 + 5] = nan;
  Tensor rows = tensor(v, {3, 2000});
  EXPECT_EQ(on_host<int64_t>(argmax(on_gpu(rows), 1)),
            (std::vector<int64_t>{1500, 5, argmax(rows, 1).to_vector<int64_t>()[2]}));
  std::vector<float> maxima = on_host<float>(amax(on_gpu(rows), {1}));
  EXPECT_TRUE(std::isnan(maxima[0]) && std::isnan(maxima[1]) && !std::isnan(maxima[2]));
  // columns: x [2000, 40] with NaNs in column 3 at rows 1500 and 1700
  std::vector<double> c = random_tensor({2000, 40}, 6).to_vector<double>();
  c[1500 * 40 + 3] = c[1700 * 40 + 3] = nan;
  Tensor cols = tensor(c, {2000, 40});
  std::vector<int64_t> at = on_host<int64_t>(argmax(on_gpu(cols), 0));
  EXPECT_EQ(at, argmax(cols, 0).to_vector<int64_t>());
  EXPECT_EQ(at[3], 1500);
}

TEST_F(Reduce, IntegerSumsAndEmptyExtents) {
  Tensor x = (random_tensor({6, 50, 41}, 7) * 100.0).to(DType::i64);
  for (const IntVec& dims : every_dim_set(3)) {
    EXPECT_EQ(on_host<int64_t>(sum(on_gpu(x), dims)), sum(x, dims).to_vector<int64_t>()) << dims_str(dims);
    EXPECT_EQ(on_host<int64_t>(amax(on_gpu(x), dims)), amax(x, dims).to_vector<int64_t>()) << dims_str(dims);
  }
  // a reduced extent of zero sums to zero
  const TensorOptions gpu{.device = Device::cuda(0)};
  EXPECT_EQ(on_host<float>(sum(zeros({3, 0, 4}, gpu), {1})), std::vector<float>(12, 0.0f));
  EXPECT_EQ(on_host<float>(sum(zeros({3, 0}, gpu), {1})), std::vector<float>(3, 0.0f));
  EXPECT_EQ(on_host<float>(sum(zeros({0, 40}, gpu), {0})), std::vector<float>(40, 0.0f));
}

TEST_F(Reduce, RepeatedReductionsAreBitIdentical) {
  Tensor rows = on_gpu(random_tensor({3, 50001}, 8, DType::f32));
  Tensor cols = on_gpu(random_tensor({20000, 64}, 9, DType::f32));
  for (auto [x, dims] : {std::pair{rows, IntVec{1}}, std::pair{rows, IntVec{}}, std::pair{cols, IntVec{0}}}) {
    EXPECT_EQ(on_host<float>(sum(x, dims)), on_host<float>(sum(x, dims)));
    EXPECT_EQ(on_host<float>(norm(x, dims)), on_host<float>(norm(x, dims)));
  }
}

}  // namespace
}  // namespace ponder
