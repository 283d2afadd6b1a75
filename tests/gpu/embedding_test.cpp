// CUDA embedding against its CPU twin: gathers, deterministic gradient sums, bad ids, and bad
// ids whose check is deferred (backend/id_check.h).
#include <cmath>
#include <random>

#include "backend/id_check.h"

#include "gpu/twin.h"
#include "support/test_util.h"

namespace ponder {
namespace {
using testing::cuda_matches_cpu;
using testing::random_tensor;
using testing::twin_tolerance;

using Embedding = testing::CudaTwin;

// Ids drawn from [0, distinct) (many repeats when distinct is small), scattered over [0, vocab).
Tensor random_ids(const Shape& shape, int64_t vocab, int64_t distinct, uint64_t seed, DType dtype = DType::i64) {
  std::mt19937_64 rng(seed);
  std::vector<double> values(shape.product());
  for (double& v : values) v = double((rng() % distinct) * (vocab / distinct));
  return tensor(values, shape, {.dtype = dtype});
}

TEST_F(Embedding, MatchesCpuForRowWidthsAndIdTypes) {
  for (DType dt : {DType::f32, DType::bf16}) {
    for (int64_t d : {1536, 64, 7}) {  // 16-byte, 16-byte and 4- or 2-byte row moves
      Tensor w = random_tensor({1000, d}, 1, dt, true);
      for (DType it : {DType::i64, DType::i32}) {
        Tensor ids = random_ids({4, 33}, 1000, 50, 2, it);  // duplicates
        EXPECT_TRUE(cuda_matches_cpu([](const TensorList& in) { return embedding(in[0], in[1]); }, {w, ids},
                                     twin_tolerance(dt)))
            << dtype_name(dt) << " D " << d;
      }
    }
  }
}

TEST_F(Embedding, LargeVocabularyWithHeavyRepeats) {
  // 65536 rows need all 16 bits of the sort; one id is repeated hundreds of times.
  Tensor w = random_tensor({65536, 96}, 1, DType::bf16, true);
  Tensor ids = random_ids({4096}, 65536, 4096, 3);
  std::vector<double> values = ids.to_vector<double>();
  for (size_t i = 0; i < values.size(); i += 7) values[i] = 65535;
  Tensor repeated = tensor(values, {2, 2048}, {.dtype = DType::i64});
  EXPECT_TRUE(cuda_matches_cpu([](const TensorList& in) { return embedding(in[0], in[1]); }, {w, repeated},
                               twin_tolerance(DType::bf16)));
}

TEST_F(Embedding, GradientIsBitIdenticalAcrossCalls) {
  const Device gpu = Device::cuda(0);
  Tensor w = random_tensor({5000, 1536}, 1, DType::f32).to(gpu).set_requires_grad(true);
  Tensor ids = random_ids({8192}, 5000, 37, 4).to(gpu);
  Tensor g = random_tensor({8192, 1536}, 5, DType::f32).to(gpu);
  auto grad = [&] { return autograd::grad({embedding(w, ids)}, {w}, {g})[0].to_vector<float>(); };
  EXPECT_EQ(grad(), grad());
}

TEST_F(Embedding, BadIdsGiveTheCpuMessage) {
  Tensor w = zeros({10, 4});
  for (const Tensor& ids :
       {tensor({1, 2, 3, 9, 4, 10, 11}, {7}, {.dtype = DType::i64}), tensor({0, -1, 1}, {3}, {.dtype = DType::i32})}) {
    std::string cpu = testing::error_message<ValueError>([&] { embedding(w, ids); });
    std::string gpu =
        testing::error_message<ValueError>([&] { embedding(w.to(Device::cuda(0)), ids.to(Device::cuda(0))); });
    EXPECT_FALSE(cpu.empty());
    EXPECT_EQ(gpu, cpu);
  }
}

// Deferred, a bad id is recorded and the ops go on without leaving their tables (the bad id's
// embedding row is zeros, its loss NaN); the raise reports the first error since the last one,
// with the op that met it, and clears the record.
TEST_F(Embedding, DeferredChecksRaiseTheFirstBadIdLater) {
  const Device gpu = Device::cuda(0);
  Tensor w = full({10, 4}, 1.0, {.device = gpu}).set_requires_grad(true);
  Tensor ids = tensor({1, 2, 12, 3, -5}, {5}, {.dtype = DType::i64, .device = gpu});
  Tensor targets = tensor({0, 40, kIgnoreIndex, 1, 2}, {5}, {.dtype = DType::i64, .device = gpu});
  Tensor rows, loss;
  {
    backend::DeferIdChecks defer(gpu);
    rows = embedding(w, ids);
    loss = cross_entropy(rows, targets, kIgnoreIndex, Reduction::none);
    loss.sum().backward();  // the embedding's backward meets the bad ids too
  }
  EXPECT_EQ(testing::error_message<ValueError>([&] { backend::raise_deferred_id_checks(gpu); }),
            "embedding: id 12 at position 2 is outside the vocabulary of 10");
  EXPECT_NO_THROW(backend::raise_deferred_id_checks(gpu));  // cleared
  const std::vector<float> got = rows.to(Device::cpu()).to_vector<float>();
  for (int j = 0; j < 4; ++j) {
    EXPECT_EQ(got[2 * 4 + j], 0.0f);
    EXPECT_EQ(got[4 * 4 + j], 0.0f);
    EXPECT_EQ(got[1 * 4 + j], 1.0f);
  }
  const std::vector<float> losses = loss.to(Device::cpu()).to_vector<float>();
  EXPECT_TRUE(std::isnan(losses[1]));
  EXPECT_TRUE(std::isfinite(losses[0]));
  // Outside the scope the next bad target throws at once.
  EXPECT_EQ(testing::error_message<ValueError>([&] { cross_entropy(rows, targets); }),
            "cross_entropy: target 40 at position 1 is outside the vocabulary of 4");

  // 17 shares its low four bits with 1: the backward's sort must still keep it out of row 1.
  Tensor v = zeros({10, 4}, {.device = gpu}).set_requires_grad(true);
  {
    backend::DeferIdChecks defer(gpu);
    embedding(v, tensor({1, 17, 1, 3}, {4}, {.dtype = DType::i64, .device = gpu})).sum().backward();
  }
  EXPECT_EQ(testing::error_message<ValueError>([&] { backend::raise_deferred_id_checks(gpu); }),
            "embedding: id 17 at position 1 is outside the vocabulary of 10");
  std::vector<float> expected(40, 0.0f);
  for (int j = 0; j < 4; ++j) {
    expected[1 * 4 + j] = 2.0f;
    expected[3 * 4 + j] = 1.0f;
  }
  EXPECT_EQ(v.grad().to(Device::cpu()).to_vector<float>(), expected);
}

// A scope left by an exception forgets what it recorded: the error never surfaces later.
TEST_F(Embedding, AnExceptionClearsDeferredChecks) {
  const Device gpu = Device::cuda(0);
  Tensor w = zeros({10, 4}, {.device = gpu});
  EXPECT_THROW(
      {
        backend::DeferIdChecks defer(gpu);
        embedding(w, tensor({11}, {1}, {.dtype = DType::i64, .device = gpu}));
        throw std::runtime_error("a later failure in the same step");
      },
      std::runtime_error);
  EXPECT_NO_THROW(backend::raise_deferred_id_checks(gpu));
}

}  // namespace
}  // namespace ponder
