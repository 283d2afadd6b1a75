// CUDA attention kernels against their CPU twins: every mask, MHA and GQA, head_dim 64 and 128 (bf16
// flash kernels) and odd head dims (f32), packings with many samples, padding and long samples.
// Every case runs with both bf16 backwards: the single-pass one (dQ added into an f32 sum with
// atomics, the default) and the two-kernel one of deterministic mode.
#include <cmath>
#include <random>
#include <sstream>
#include <string>

#include "backend/determinism.h"
#include "gpu/twin.h"
#include "support/test_util.h"

namespace ponder {
namespace {
using testing::cuda_matches_cpu;
using testing::error_message;
using testing::random_tensor;
using testing::twin_tolerance;

// The parameter is the determinism switch (backend/determinism.h) the backward runs under.
class CudaAttention : public testing::CudaTwin, public ::testing::WithParamInterface<bool> {
 protected:
  void SetUp() override {
    CudaTwin::SetUp();
    backend::set_deterministic(GetParam());
  }
  void TearDown() override {
    backend::set_deterministic(false);
    CudaTwin::TearDown();
  }
};

INSTANTIATE_TEST_SUITE_P(Backward, CudaAttention, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Deterministic" : "SinglePass";
                         });

// bf16 kernels round P and dS to bf16 for the tensor cores; the CPU keeps them in f32.
constexpr double kBf16Tolerance = 2e-2;
constexpr AttentionMask kMasks[] = {AttentionMask::causal, AttentionMask::bidirectional,
                                    AttentionMask::prefix_lm};

// Sample lengths of a packed batch and each sample's prefix_lm prefix.
struct Packing {
  std::vector<int> lengths, prefixes;
  int64_t tokens() const {
    int64_t n = 0;
    for (int len : lengths) n += len;
    return n;
  }
  void add(int len, int prefix) {
    lengths.push_back(len);
    prefixes.push_back(prefix);
  }
  std::string str() const {
    std::ostringstream os;
    os << "lengths/prefixes";
    for (size_t s = 0; s < lengths.size(); ++s) os << ' ' << lengths[s] << '/' << prefixes[s];
    return os.str();
  }
};

// `samples` samples of 1..max_len tokens; prefixes are empty, whole-sample or anything between.
Packing random_packing(uint32_t seed, int samples, int max_len) {
  std::mt19937 gen(seed);
  Packing p;
  for (int s = 0; s < samples; ++s) {
    const int len = std::uniform_int_distribution<int>(1, max_len)(gen);
    switch (std::uniform_int_distribution<int>(0, 3)(gen)) {
      case 0: p.add(len, 0); break;
      case 1: p.add(len, len); break;
      default: p.add(len, std::uniform_int_distribution<int>(0, len)(gen));
    }
  }
  return p;
}

// Rows of `row_len` tokens, each filled with random samples and closed by a padding sample.
Packing padded_rows(uint32_t seed, int rows, int row_len) {
  std::mt19937 gen(seed);
  Packing p;
  for (int r = 0; r < rows; ++r) {
    int used = 0;
    for (;;) {
      const int len = std::uniform_int_distribution<int>(1, 200)(gen);
      if (used + len > row_len - 10) break;
      p.add(len, std::uniform_int_distribution<int>(0, len)(gen));
      used += len;
    }
    p.add(row_len - used, 0);
  }
  return p;
}

Tensor i32_tensor(const std::vector<int>& values, Device device) {
  return tensor(std::vector<double>(values.begin(), values.end()), {int64_t(values.size())},
                {.dtype = DType::i32})
      .to(device);
}

AttentionSpec spec_for(const Packing& p, AttentionMask mask, Device device) {
  std::vector<int> cu = {0};
  for (int len : p.lengths) cu.push_back(cu.back() + len);
  AttentionSpec spec{.mask = mask, .cu_seqlens = i32_tensor(cu, device)};
  if (mask == AttentionMask::prefix_lm) spec.prefix_len = i32_tensor(p.prefixes, device);
  return spec;
}

struct Heads {
  int64_t q, kv, dim;
};

TensorList random_qkv(const Packing& p, Heads h, DType dtype, uint64_t seed) {
  return {random_tensor({p.tokens(), h.q, h.dim}, seed, dtype, true),
          random_tensor({p.tokens(), h.kv, h.dim}, seed + 1, dtype, true),
          random_tensor({p.tokens(), h.kv, h.dim}, seed + 2, dtype, true)};
}

// Output and q, k, v gradients of attention on the CPU and on the GPU, compared norm-relatively.
::testing::AssertionResult twins_agree(const Packing& p, AttentionMask mask, Heads h, DType dtype, double tolerance,
                                       uint64_t seed = 1) {
  const double scale = 1.0 / std::sqrt(double(h.dim));
  auto fn = [&](const TensorList& in) { return attention(in[0], in[1], in[2], spec_for(p, mask, in[0].device()), scale); };
  return cuda_matches_cpu(fn, random_qkv(p, h, dtype, seed), tolerance);
}

std::string describe_case(const Packing& p, AttentionMask mask, Heads h) {
  return std::string(mask_name(mask)) + ", Hq " + std::to_string(h.q) + ", Hkv " + std::to_string(h.kv) + ", D " +
         std::to_string(h.dim) + ", " + p.str();
}

const Heads kBf16Heads[] = {{4, 4, 64}, {8, 2, 64}, {4, 4, 128}, {8, 2, 128}};

TEST_P(CudaAttention, Bf16MatchesCpuOnRandomPackings) {
  uint32_t seed = 1;
  for (const Heads& h : kBf16Heads) {
    for (AttentionMask mask : kMasks) {
      const Packing p = random_packing(seed++, 14, 300);
      SCOPED_TRACE(describe_case(p, mask, h));
      EXPECT_TRUE(twins_agree(p, mask, h, DType::bf16, kBf16Tolerance, seed));
    }
  }
}

// Lengths around the 64-row tiles and 128-row query blocks, one-token samples, empty and whole prefixes.
TEST_P(CudaAttention, Bf16TileBoundariesAndTinySamples) {
  Packing p;
  for (int len : {63, 64, 65, 1, 127, 128, 129, 1, 1, 191, 2, 17}) p.add(len, len % 3 == 0 ? len : len / 2);
  p.prefixes[0] = 0;
  for (const Heads& h : kBf16Heads) {
    for (AttentionMask mask : kMasks) {
      SCOPED_TRACE(describe_case(p, mask, h));
      EXPECT_TRUE(twins_agree(p, mask, h, DType::bf16, kBf16Tolerance));
    }
  }
}

TEST_P(CudaAttention, Bf16RowsWithPaddingSamples) {
  const Packing p = padded_rows(5, 3, 512);
  for (AttentionMask mask : kMasks) {
    for (const Heads& h : {Heads{8, 2, 128}, Heads{4, 4, 64}}) {
      SCOPED_TRACE(describe_case(p, mask, h));
      EXPECT_TRUE(twins_agree(p, mask, h, DType::bf16, kBf16Tolerance));
    }
  }
}

TEST_P(CudaAttention, Bf16SingleLongSample) {
  Packing p;
  p.add(1000, 377);
  for (AttentionMask mask : kMasks) {
    SCOPED_TRACE(describe_case(p, mask, {8, 2, 128}));
    EXPECT_TRUE(twins_agree(p, mask, {8, 2, 128}, DType::bf16, kBf16Tolerance));
  }
}

// Zero-length samples anywhere (they own no rows, and the kernels skip their slots).
TEST_P(CudaAttention, ZeroLengthSamples) {
  Packing p;
  for (int len : {0, 70, 0, 0, 5, 130, 0}) p.add(len, len / 3);
  for (DType dtype : {DType::bf16, DType::f32}) {
    for (AttentionMask mask : kMasks) {
      SCOPED_TRACE(describe_case(p, mask, {4, 2, 64}) + ", " + std::string(dtype_name(dtype)));
      const double tolerance = dtype == DType::bf16 ? kBf16Tolerance : twin_tolerance(dtype);
      EXPECT_TRUE(twins_agree(p, mask, {4, 2, 64}, dtype, tolerance));
    }
  }
}

// f32 runs the simple kernels, in f64 internally like the CPU; any head_dim up to 256.
TEST_P(CudaAttention, F32MatchesCpuClosely) {
  uint32_t seed = 100;
  for (const Heads& h : {Heads{4, 4, 64}, Heads{8, 2, 128}, Heads{3, 1, 40}, Heads{2, 2, 256}}) {
    for (AttentionMask mask : kMasks) {
      const Packing p = random_packing(seed++, 8, 150);
      SCOPED_TRACE(describe_case(p, mask, h));
      EXPECT_TRUE(twins_agree(p, mask, h, DType::f32, twin_tolerance(DType::f32), seed));
    }
  }
}

// A contiguous view at an odd element offset (not 16-byte aligned) and a strided q.
TEST_P(CudaAttention, MisalignedAndStridedInputs) {
  const Packing p = random_packing(7, 5, 100);
  const int64_t n = p.tokens(), numel = n * 4 * 64;
  for (AttentionMask mask : kMasks) {
    SCOPED_TRACE(mask_name(mask));
    auto fn = [&](const TensorList& in) {
      Tensor q = in[0].slice(0, 1, 1 + numel).view({n, 4, 64});    // offset by one element
      Tensor k = in[1].transpose(0, 1);                             // [n, 2, 64] with token stride 64
      return attention(q, k, in[2], spec_for(p, mask, in[0].device()), 0.125);
    };
    TensorList in = {random_tensor({numel + 1}, 1, DType::bf16, true), random_tensor({2, n, 64}, 2, DType::bf16, true),
                     random_tensor({n, 2, 64}, 3, DType::bf16, true)};
    EXPECT_TRUE(cuda_matches_cpu(fn, in, kBf16Tolerance));
  }
}

// Two backward passes give bit-identical gradients: all of them in deterministic mode; dk and dv
// (no atomics) in the single-pass one, whose dq sums in a varying order.
TEST_P(CudaAttention, BackwardIsDeterministic) {
  const bool deterministic = GetParam();
  const Packing p = random_packing(11, 10, 300);
  for (DType dtype : {DType::bf16, DType::f32}) {
    const TensorList cpu = random_qkv(p, {8, 2, 128}, dtype, 3);
    const Tensor weight = random_tensor({p.tokens(), 8, 128}, 4, dtype).to(Device::cuda(0));
    auto gradients = [&] {
      TensorList leaves;
      for (const Tensor& t : cpu) leaves.push_back(t.detach().to(Device::cuda(0)).set_requires_grad(true));
      attention(leaves[0], leaves[1], leaves[2], spec_for(p, AttentionMask::prefix_lm, Device::cuda(0)), 0.09)
          .backward(weight);
      std::vector<std::vector<float>> grads;
      for (size_t i = deterministic || dtype == DType::f32 ? 0 : 1; i < leaves.size(); ++i) {
        grads.push_back(leaves[i].grad().to(Device::cpu()).to_vector<float>());
      }
      return grads;
    };
    EXPECT_EQ(gradients(), gradients()) << dtype_name(dtype);
  }
}

TEST_P(CudaAttention, UnsupportedHeadDimsAndDtypesAreRefused) {
  const Packing p = random_packing(3, 2, 20);
  const Device gpu = Device::cuda(0);
  auto run = [&](DType dtype, int64_t dim) {
    return [&p, gpu, dtype, dim] {
      Tensor q = random_tensor({p.tokens(), 2, dim}, 1, dtype).to(gpu);
      attention(q, q, q, spec_for(p, AttentionMask::causal, gpu), 1.0);
    };
  };
  EXPECT_NE(error_message<ShapeError>(run(DType::bf16, 96)).find("the CUDA bf16 kernels support head_dim 64 and 128"),
            std::string::npos);
  EXPECT_NE(error_message<ShapeError>(run(DType::f32, 512)).find("the CUDA f32 kernels support head_dim up to 256"),
            std::string::npos);
  EXPECT_NE(error_message<DTypeError>(run(DType::f64, 64)).find("f64 has no CUDA kernel"), std::string::npos);
}

}  // namespace
}  // namespace ponder
