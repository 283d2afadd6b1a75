// CUDA cross-entropy and the fused LM-head loss against their CPU twins.
#include "gpu/twin.h"
#include "optim/grad_buffer.h"
#include "support/test_util.h"

namespace ponder {
namespace {
using testing::cuda_matches_cpu;
using testing::error_message;
using testing::random_tensor;
using testing::relative_error;
using testing::twin_tolerance;

using CrossEntropyTwin = testing::CudaTwin;
using LmHeadTwin = testing::CudaTwin;

constexpr Reduction kReductions[] = {Reduction::mean, Reduction::sum, Reduction::none};

// Targets for `rows` positions over `vocab` classes, every third one ignored.
Tensor some_targets(int64_t rows, int64_t vocab, DType dtype, uint64_t seed) {
  std::vector<double> ids(rows);
  for (int64_t r = 0; r < rows; ++r) ids[r] = r % 3 == 1 ? kIgnoreIndex : double((r * 7919 + seed) % vocab);
  return tensor(ids, {rows}, {.dtype = dtype});
}

TEST_F(CrossEntropyTwin, EveryReductionWithIgnoredTargets) {
  // a warp per row (7, 1000), a block per row (32771: odd, so no vector loads; 65536: vector loads)
  for (DType dt : {DType::f32, DType::bf16}) {
    for (int64_t vocab : {7, 1000, 32771, 65536}) {
      const int64_t rows = vocab > 1024 ? 5 : 23;
      Tensor logits = random_tensor({rows, vocab}, vocab, dt, true);
      for (DType index : {DType::i64, DType::i32}) {
        Tensor targets = some_targets(rows, vocab, index, 1);
        for (Reduction r : kReductions) {
          EXPECT_TRUE(cuda_matches_cpu(
              [&](const TensorList& in) { return cross_entropy(in[0], in[1], kIgnoreIndex, r); },
              {logits, targets}, twin_tolerance(dt)))
              << dtype_name(dt) << " V=" << vocab << " reduction " << int(r);
        }
      }
    }
  }
}

TEST_F(CrossEntropyTwin, LeadingDimsLargeLogitsAndAnotherIgnoreIndex) {
  for (DType dt : {DType::f32, DType::bf16}) {
    Tensor logits = random_tensor({2, 3, 1500}, 2, dt, true);
    Tensor targets = tensor({0, 1499, 0, 7, 0, 3}, {2, 3}, {.dtype = DType::i64});
    for (Reduction r : kReductions) {
      EXPECT_TRUE(cuda_matches_cpu([&](const TensorList& in) { return cross_entropy(in[0] * 100.0, in[1], 0, r); },
                                   {logits, targets}, twin_tolerance(dt)));
    }
  }
}

TEST_F(CrossEntropyTwin, AllIgnoredMeanIsZero) {
  Tensor logits = random_tensor({4, 2000}, 3, DType::f32, true).to(Device::cuda(0)).detach().set_requires_grad(true);
  Tensor targets = full({4}, double(kIgnoreIndex), {.dtype = DType::i64, .device = Device::cuda(0)});
  Tensor loss = cross_entropy(logits, targets);
  EXPECT_EQ(loss.item<float>(), 0.0f);
  loss.backward();
  EXPECT_EQ(logits.grad().to(Device::cpu()).to_vector<float>(), std::vector<float>(8000, 0.0f));
}

TEST_F(CrossEntropyTwin, BadTargetThrowsTheCpuError) {
  Tensor logits = random_tensor({6, 10}, 4, DType::f32);
  for (DType index : {DType::i64, DType::i32}) {
    Tensor targets = tensor({1, -100, 10, 3, -1, 2}, {6}, {.dtype = index});
    const std::string cpu = error_message<ValueError>([&] { cross_entropy(logits, targets); });
    EXPECT_EQ(cpu, "cross_entropy: target 10 at position 2 is outside the vocabulary of 10");
    EXPECT_EQ(error_message<ValueError>(
                  [&] { cross_entropy(logits.to(Device::cuda(0)), targets.to(Device::cuda(0))); }),
              cpu);
  }
  // many positions: the first bad one across the checking block's threads is reported
  std::vector<double> ids(5000, 3.0);
  ids[2500] = 11;
  ids[2900] = -7;
  ids[4999] = 12;
  Tensor many = tensor(ids, {5000}, {.dtype = DType::i64, .device = Device::cuda(0)});
  EXPECT_EQ(error_message<ValueError>(
                [&] { cross_entropy(random_tensor({5000, 10}, 5, DType::f32).to(Device::cuda(0)), many); }),
            "cross_entropy: target 11 at position 2500 is outside the vocabulary of 10");
}

// Loss and input gradients of fn(h, w) on fresh leaf copies, all brought back to the host in f64.
TensorList loss_and_grads(const std::function<Tensor(const Tensor&, const Tensor&)>& fn, const Tensor& h,
                          const Tensor& w) {
  Tensor hl = h.detach().clone().set_requires_grad(true), wl = w.detach().clone().set_requires_grad(true);
  Tensor loss = fn(hl, wl);
  loss.backward();
  TensorList out;
  for (const Tensor& t : {loss, hl.grad(), wl.grad()}) out.push_back(t.detach().to(Device::cpu()).to(DType::f64));
  return out;
}

// The fused loss on the GPU, against itself on the CPU and against the unfused ops on the GPU.
// (The GPU runs need the CUDA matmul.)
TEST_F(LmHeadTwin, MatchesTheCpuAndTheUnfusedOps) {
  for (DType dt : {DType::f32, DType::bf16}) {
    Tensor h = random_tensor({37, 24}, 6, dt, true), w = random_tensor({300, 24}, 7, dt, true);
    Tensor targets = some_targets(37, 300, DType::i64, 2);
    Tensor on_device = targets.to(Device::cuda(0));
    const double tol = twin_tolerance(dt);
    for (Reduction r : {Reduction::mean, Reduction::sum}) {
      TensorList unfused = loss_and_grads(
          [&](const Tensor& hh, const Tensor& ww) { return cross_entropy(linear(hh, ww), on_device, kIgnoreIndex, r); },
          h.to(Device::cuda(0)), w.to(Device::cuda(0)));
      for (int64_t chunk : {16, 37, 4096}) {
        EXPECT_TRUE(cuda_matches_cpu(
            [&](const TensorList& in) { return lm_head_cross_entropy(in[0], in[1], in[2], kIgnoreIndex, r, chunk); },
            {h, w, targets}, tol))
            << dtype_name(dt) << " chunk " << chunk;
        TensorList fused = loss_and_grads(
            [&](const Tensor& hh, const Tensor& ww) {
              return lm_head_cross_entropy(hh, ww, on_device, kIgnoreIndex, r, chunk);
            },
            h.to(Device::cuda(0)), w.to(Device::cuda(0)));
        for (size_t i = 0; i < fused.size(); ++i) {
          EXPECT_LT(relative_error(fused[i], unfused[i]), tol) << dtype_name(dt) << " chunk " << chunk << " item " << i;
        }
      }
    }
  }
}

// The trainer's path on the GPU: a bf16 head whose .grad is an fp32 buffer gets dW scaled by the
// upstream gradient (a device scalar) added there, over two backwards, as on the CPU.
TEST_F(LmHeadTwin, Bf16WeightAccumulatesScaledIntoAnFp32Grad) {
  Tensor h = random_tensor({70, 32}, 8, DType::bf16), w = random_tensor({500, 32}, 9, DType::bf16);
  Tensor targets = some_targets(70, 500, DType::i64, 3);
  auto accumulated = [&](Device device) {
    Tensor weight = w.detach().to(device).set_requires_grad(true);
    optim::GradBuffer buffer({weight}, DType::f32);
    for (double scale : {1.0, 0.25}) {
      (lm_head_cross_entropy(h.to(device), weight, targets.to(device), kIgnoreIndex, Reduction::sum, 32) * scale)
          .backward();
    }
    EXPECT_TRUE(weight.grad().is_same(buffer.view(0)));
    return buffer.view(0).to(Device::cpu());
  };
  const Tensor cpu = accumulated(Device::cpu()), gpu = accumulated(Device::cuda(0));
  EXPECT_LT(relative_error(gpu, cpu), 1e-2);
  // One backward of the unscaled loss gives 1 / 1.25 of it: the 0.25 reached the sum.
  Tensor single = w.to(Device::cuda(0)).set_requires_grad(true);
  optim::GradBuffer once({single}, DType::f32);
  lm_head_cross_entropy(h.to(Device::cuda(0)), single, targets.to(Device::cuda(0)), kIgnoreIndex, Reduction::sum, 32)
      .backward();
  EXPECT_LT(relative_error(once.view(0).to(Device::cpu()) * 1.25, gpu), 1e-5);
}

TEST_F(LmHeadTwin, BadTargetThrowsBeforeAnyChunk) {
  Tensor h = random_tensor({9, 4}, 8, DType::f32).to(Device::cuda(0));
  Tensor w = random_tensor({5, 4}, 9, DType::f32).to(Device::cuda(0));
  Tensor targets = tensor({0, 1, 2, 3, 4, 0, 1, 9, 2}, {9}, {.dtype = DType::i64, .device = Device::cuda(0)});
  EXPECT_EQ(error_message<ValueError>([&] { lm_head_cross_entropy(h, w, targets, kIgnoreIndex, Reduction::mean, 4); }),
            "lm_head_cross_entropy: target 9 at position 7 is outside the vocabulary of 5");
}

}  // namespace
}  // namespace ponder
