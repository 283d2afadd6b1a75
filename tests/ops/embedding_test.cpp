#include <gtest/gtest.h>
#include <omp.h>

#include "ops/ops.h"
#include "support/test_util.h"

namespace ponder {
namespace {
using testing::all_close;
using testing::gradcheck;
using testing::random_tensor;

Tensor ids_tensor(const std::vector<double>& values, const Shape& shape, DType dtype = DType::i64) {
  return tensor(values, shape, {.dtype = dtype});
}

// out[n, j] = weight[ids[n], j] with plain loops.
Tensor naive_lookup(const Tensor& weight, const Tensor& ids) {
  const int64_t d = weight.size(1);
  std::vector<double> w = weight.to_vector<double>(), out;
  for (int64_t id : ids.to_vector<int64_t>()) out.insert(out.end(), w.begin() + id * d, w.begin() + (id + 1) * d);
  Shape shape = ids.shape();
  shape.push_back(d);
  return tensor(out, shape, {.dtype = DType::f64});
}

// grad_weight[ids[n], j] += grad[n, j] with plain loops.
Tensor naive_scatter(const Tensor& grad, const Tensor& ids, int64_t vocab) {
  const int64_t d = grad.shape().back();
  std::vector<double> g = grad.to_vector<double>(), out(vocab * d, 0.0);
  std::vector<int64_t> id = ids.to_vector<int64_t>();
  for (size_t n = 0; n < id.size(); ++n)
    for (int64_t j = 0; j < d; ++j) out[id[n] * d + j] += g[n * d + j];
  return tensor(out, {vocab, d}, {.dtype = DType::f64});
}

TEST(Embedding, GathersRowsForAnyIdShape) {
  Tensor w = random_tensor({6, 3}, 1);
  Tensor ids = ids_tensor({5, 0, 2, 2, 1, 5}, {2, 3});
  Tensor out = embedding(w, ids);
  EXPECT_EQ(out.shape(), Shape({2, 3, 3}));
  EXPECT_TRUE(all_close(out, naive_lookup(w, ids), 0, 0));
  EXPECT_TRUE(all_close(embedding(w, ids.to(DType::i32)), out, 0, 0));
  Tensor scalar_id = ids_tensor({4}, {});
  EXPECT_EQ(embedding(w, scalar_id).shape(), Shape({3}));
  EXPECT_TRUE(all_close(embedding(w, scalar_id), w.slice(0, 4, 5).reshape({3}), 0, 0));
  EXPECT_EQ(embedding(w, ids_tensor({}, {0, 2})).shape(), Shape({0, 2, 3}));
}

TEST(Embedding, StridedWeightAndIds) {
  Tensor w = random_tensor({3, 6}, 1).t();  // [6, 3], not contiguous
  Tensor ids = ids_tensor({5, 0, 2, 2, 1, 5}, {2, 3}).t();
  EXPECT_TRUE(all_close(embedding(w, ids), naive_lookup(w, ids), 0, 0));
}

TEST(Embedding, LargeLookupsTakeTheParallelPath) {
  Tensor w = random_tensor({50, 64}, 1, DType::f32);
  std::vector<double> id(1000);
  for (size_t i = 0; i < id.size(); ++i) id[i] = double((i * 37) % 50);
  Tensor ids = ids_tensor(id, {10, 100});
  EXPECT_TRUE(all_close(embedding(w, ids), naive_lookup(w, ids), 0, 0));
}

TEST(Embedding, EveryDtypeCopiesRowsExactly) {
  Tensor ids = ids_tensor({3, 1, 3}, {3});
  for (DType dt : {DType::f32, DType::bf16}) {
    Tensor w = random_tensor({4, 5}, 1, dt);
    Tensor out = embedding(w, ids);
    EXPECT_EQ(out.dtype(), dt);
    EXPECT_TRUE(all_close(out, naive_lookup(w, ids), 0, 0));
  }
}

TEST(Embedding, Gradcheck) {
  Tensor w = random_tensor({5, 3}, 1, DType::f64, true);
  for (const Tensor& ids : {ids_tensor({4, 0, 4, 2, 4, 1}, {2, 3}), ids_tensor({3}, {}),
                            ids_tensor({0, 1, 2, 3, 4}, {5}, DType::i32), ids_tensor({}, {0})}) {
    EXPECT_TRUE(gradcheck([&](const TensorList& in) { return embedding(in[0], ids); }, {w})) << ids.shape();
  }
}

TEST(Embedding, BackwardScatterAddsRepeatedIds) {
  Tensor w = random_tensor({7, 4}, 1, DType::f64, true);
  Tensor ids = ids_tensor({6, 2, 6, 6, 0, 2}, {3, 2});
  Tensor g = random_tensor({3, 2, 4}, 2);
  embedding(w, ids).backward(g);
  EXPECT_TRUE(all_close(w.grad(), naive_scatter(g, ids, 7), 1e-15, 1e-15));
  std::vector<double> unused_row = w.grad().slice(0, 3, 4).to_vector<double>();
  EXPECT_EQ(unused_row, std::vector<double>(4, 0.0));
}

TEST(Embedding, BackwardDoesNotDependOnTheThreadCount) {
  Tensor w = random_tensor({40, 96}, 1, DType::f32, true);
  std::vector<double> id(2000);
  for (size_t i = 0; i < id.size(); ++i) id[i] = double((i * i) % 40);
  Tensor ids = ids_tensor(id, {2000});
  Tensor g = random_tensor({2000, 96}, 2, DType::f32);
  auto grad_with = [&](int threads) {
    int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    Tensor gw = autograd::grad({embedding(w, ids)}, {w}, {g})[0];
    omp_set_num_threads(saved);
    return gw;
  };
  Tensor one = grad_with(1), many = grad_with(4);
  EXPECT_EQ(one.to_vector<float>(), many.to_vector<float>());
  EXPECT_LT(testing::relative_error(one, naive_scatter(g, ids, 40)), 1e-6);
}

TEST(Embedding, Bf16GradientAccumulatesInFloat) {
  // 300 additions of 1 into one row: exact in float accumulation, then rounded once to bf16 (300
  // is representable); bf16 accumulation would stall at 256.
  Tensor w = zeros({2, 1}, {.dtype = DType::bf16, .requires_grad = true});
  Tensor ids = zeros({300}, {.dtype = DType::i64});
  embedding(w, ids).backward(ones({300, 1}, {.dtype = DType::bf16}));
  EXPECT_EQ(w.grad().to_vector<double>(), (std::vector<double>{300, 0}));
}

TEST(Embedding, OutOfRangeIdsNameTheIdPositionAndVocabulary) {
  Tensor w = zeros({65536, 1});
  Tensor ids = ids_tensor({1, 2, 3, 4, 5, 70000, 6}, {7});
  EXPECT_EQ(testing::error_message<ValueError>([&] { embedding(w, ids); }),
            "embedding: id 70000 at position 5 is outside the vocabulary of 65536");
  EXPECT_EQ(testing::error_message<ValueError>([&] { embedding(zeros({4, 2}), ids_tensor({0, -1}, {2}, DType::i32)); }),
            "embedding: id -1 at position 1 is outside the vocabulary of 4");
  EXPECT_THROW(embedding(zeros({4, 2}), ids_tensor({4}, {1})), ValueError);
}

TEST(Embedding, BadInputsNameTheOperands) {
  EXPECT_EQ(testing::error_message<ShapeError>([&] { embedding(zeros({4}), ids_tensor({0}, {1})); }),
            "embedding: weight must be 2-D [V, D], got [4] f32 cpu");
  EXPECT_EQ(testing::error_message<DTypeError>([&] { embedding(zeros({4, 2}), zeros({3})); }),
            "embedding: ids must be i32 or i64, got [3] f32 cpu");
  EXPECT_THROW(embedding(zeros({4, 2}, {.dtype = DType::i64}), ids_tensor({0}, {1})), DTypeError);
}

}  // namespace
}  // namespace ponder
