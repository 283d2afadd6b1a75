#include <gtest/gtest.h>

#include "backend/cpu/matmul.h"
#include "ops/ops.h"
#include "support/test_util.h"

namespace ponder {
namespace {
using testing::all_close;
using testing::gradcheck;
using testing::random_tensor;

// Straightforward triple loop over contiguous [M,K] x [K,N].
std::vector<double> naive(const std::vector<double>& a, const std::vector<double>& b, int m, int k, int n) {
  std::vector<double> c(m * n, 0.0);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j)
      for (int p = 0; p < k; ++p) c[i * n + j] += a[i * k + p] * b[p * n + j];
  return c;
}

TEST(Matmul, MatchesANaiveProduct) {
  Tensor a = random_tensor({7, 5}, 1), b = random_tensor({5, 3}, 2);
  std::vector<double> expected = naive(a.to_vector<double>(), b.to_vector<double>(), 7, 5, 3);
  EXPECT_TRUE(all_close(matmul(a, b), tensor(expected, {7, 3}, {.dtype = DType::f64}), 1e-12, 1e-12));
}

TEST(Matmul, TransposedAndStridedOperands) {
  Tensor a = random_tensor({5, 7}, 1), b = random_tensor({3, 5}, 2);
  Tensor ref = matmul(a.t().contiguous(), b.t().contiguous());
  EXPECT_TRUE(all_close(matmul(a.t(), b.t()), ref, 1e-12, 1e-12));
  Tensor wide = random_tensor({7, 10}, 3);
  Tensor strided = wide.slice(1, 0, 10, 2);  // neither rows nor columns contiguous
  EXPECT_TRUE(all_close(matmul(strided, b.t()), matmul(strided.contiguous(), b.t()), 1e-12, 1e-12));
}

TEST(Matmul, BatchBroadcastingAndVectors) {
  Tensor a = random_tensor({2, 1, 4, 3}, 1), b = random_tensor({5, 3, 2}, 2);
  Tensor c = matmul(a, b);
  EXPECT_EQ(c.shape(), Shape({2, 5, 4, 2}));
  EXPECT_TRUE(all_close(c.slice(0, 1, 2).slice(1, 3, 4).reshape({4, 2}),
                        matmul(a.slice(0, 1, 2).reshape({4, 3}), b.slice(0, 3, 4).reshape({3, 2})), 1e-12, 1e-12));
  Tensor v = random_tensor({3}, 3);
  EXPECT_EQ(matmul(a, v).shape(), Shape({2, 1, 4}));
  EXPECT_EQ(matmul(v, b).shape(), Shape({5, 2}));
  EXPECT_EQ(matmul(v, v).shape(), Shape({}));
  EXPECT_NEAR(matmul(v, v).item<double>(), (v * v).sum().item<double>(), 1e-12);
}

TEST(Matmul, ManySmallBatchesInParallel) {
  Tensor a = random_tensor({64, 3, 4}, 1), b = random_tensor({64, 4, 5}, 2);
  Tensor c = matmul(a, b);
  for (int i : {0, 17, 63}) {
    EXPECT_TRUE(all_close(c.slice(0, i, i + 1).reshape({3, 5}),
                          matmul(a.slice(0, i, i + 1).reshape({3, 4}), b.slice(0, i, i + 1).reshape({4, 5})), 1e-12, 1e-12));
  }
}

TEST(Matmul, F32AndBf16AreCloseToF64) {
  Tensor a = random_tensor({33, 65}, 1), b = random_tensor({65, 17}, 2);
  Tensor ref = matmul(a, b);
  EXPECT_LT(testing::relative_error(matmul(a.to(DType::f32), b.to(DType::f32)), ref), 1e-6);
  EXPECT_LT(testing::relative_error(matmul(a.to(DType::bf16), b.to(DType::bf16)), ref), 1e-2);
}

TEST(Matmul, Gradcheck) {
  Tensor a = random_tensor({2, 3, 4}, 1, DType::f64, true);
  Tensor b = random_tensor({4, 5}, 2, DType::f64, true);
  Tensor v = random_tensor({4}, 3, DType::f64, true);
  EXPECT_TRUE(gradcheck([](const TensorList& in) { return matmul(in[0], in[1]); }, {a, b}));
  EXPECT_TRUE(gradcheck([](const TensorList& in) { return matmul(in[0], in[1]); }, {a, v}));
  EXPECT_TRUE(gradcheck([](const TensorList& in) { return matmul(in[1], in[0].transpose(1, 2)); }, {a, v}));
}

// Broadcast batch dims sum their gradients; a 2-D right operand shared by the batch takes one
// product over the stacked rows instead, also from a left operand that is not contiguous.
TEST(Matmul, GradcheckBroadcastAndSharedOperands) {
  Tensor a = random_tensor({2, 1, 3, 4}, 1, DType::f64, true), b = random_tensor({5, 4, 2}, 2, DType::f64, true);
  EXPECT_TRUE(gradcheck([](const TensorList& in) { return matmul(in[0], in[1]); }, {a, b}));
  Tensor at = random_tensor({2, 3, 5, 4}, 3, DType::f64, true), w = random_tensor({5, 6}, 4, DType::f64, true);
  EXPECT_TRUE(gradcheck([](const TensorList& in) { return matmul(in[0].transpose(-2, -1), in[1]); }, {at, w}));
  Tensor empty = random_tensor({2, 0, 5}, 5, DType::f64, true), w2 = random_tensor({5, 6}, 6, DType::f64, true);
  matmul(empty, w2).sum().backward();  // no rows: a zero gradient for the shared operand
  EXPECT_TRUE(all_close(w2.grad(), zeros({5, 6}, {.dtype = DType::f64}), 0, 0));
}

// The backend's accumulating product (gradients summed in place): out += a @ b, also into an f32
// out from bf16 operands, and into a bf16 out.
TEST(Matmul, BackendAccumulatesIntoItsOutput) {
  Tensor a = random_tensor({3, 5}, 1), b = random_tensor({5, 4}, 2).t().contiguous().t(), c = random_tensor({3, 4}, 3);
  Tensor out = c.clone();
  backend::cpu::matmul(out, a, b, /*accumulate=*/true);
  EXPECT_TRUE(all_close(out, c + matmul(a, b), 1e-13, 1e-13));

  Tensor a16 = a.to(DType::bf16), b16 = b.to(DType::bf16);
  Tensor exact = c + matmul(a16.to(DType::f64), b16.to(DType::f64));
  Tensor wide = c.to(DType::f32);
  backend::cpu::matmul(wide, a16, b16, true);
  EXPECT_TRUE(all_close(wide, exact, 1e-6, 1e-6));
  Tensor narrow = c.to(DType::bf16);
  backend::cpu::matmul(narrow, a16, b16, true);
  EXPECT_TRUE(all_close(narrow, c.to(DType::bf16).to(DType::f64) + exact - c, 8e-3, 1e-2));  // a bf16 rounding
  EXPECT_THROW(backend::cpu::matmul(c.to(DType::f32), a, b, true), DTypeError);
}

TEST(Matmul, ShapeErrorsNameTheOperands) {
  try {
    matmul(zeros({2, 3}), zeros({4, 5}));
    FAIL();
  } catch (const ShapeError& e) {
    EXPECT_STREQ(e.what(), "matmul: inner dimensions differ: [2, 3] f32 cpu @ [4, 5] f32 cpu");
  }
  EXPECT_THROW(matmul(zeros({2, 3}), arange(0, 3)), DTypeError);
}

}  // namespace
}  // namespace ponder
