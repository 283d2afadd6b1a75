// CUDA optimizer kernels against their CPU twins (backend/cpu/optim.h), the fused multi-tensor
// paths against one tensor at a time, and the optimizers that dispatch to them.
#include <bit>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "backend/cpu/optim.h"
#include "backend/cuda/optim.h"
#include "backend/kernels.h"
#include "gpu/twin.h"
#include "optim/optim.h"
#include "support/test_util.h"

namespace ponder {
namespace {
using testing::random_tensor;
using testing::relative_error;

using OptimKernels = testing::CudaTwin;

const Device kGpu = Device::cuda(0);
// Odd sizes, exactly one chunk of kernels/optim.cu (16384 elements), and three chunks, the last partial.
const int64_t kSizes[] = {1, 7, 1000, 16384, 40001};
constexpr int kSteps = 3;
// Master weights and state: the GPU's atan2f and fused multiply-adds differ from the CPU's by ulps.
constexpr double kMasterTolerance = 1e-6;
// Sums of squares accumulate in double on both devices (bound: n * 2^-53 relative).
constexpr double kSumTolerance = 1e-9;

using AdamFn = void (*)(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                        const backend::AdamStep&, const Tensor&);
using AdamListFn = void (*)(const std::vector<backend::AdamTensors>&, const Tensor&);

::testing::AssertionResult near(const std::string& what, const Tensor& gpu, const Tensor& cpu, double tolerance) {
  if (!gpu.is_cuda()) return ::testing::AssertionFailure() << what << ": not on the GPU";
  const double err = relative_error(gpu.to(Device::cpu()).to(DType::f64), cpu.to(DType::f64));
  if (err <= tolerance) return ::testing::AssertionSuccess();  // false for NaN (poisoned, unwritten elements)
  return ::testing::AssertionFailure() << what << ": relative error " << err << " > " << tolerance;
}

// The bf16 working copy is exactly the master rounded (NaN where the kernel wrote nothing).
::testing::AssertionResult is_rounded_master(const Tensor& working, const Tensor& master) {
  const std::vector<float> w = working.to(Device::cpu()).to(DType::f32).to_vector<float>();
  const std::vector<float> m = master.to(Device::cpu()).to_vector<float>();
  for (size_t i = 0; i < m.size(); ++i) {
    if (!(w[i] == static_cast<float>(bf16(m[i])))) {
      return ::testing::AssertionFailure() << "working copy element " << i << " is " << w[i] << ", the master "
                                           << m[i] << " rounds to " << static_cast<float>(bf16(m[i]));
    }
  }
  return ::testing::AssertionSuccess();
}

// Equal values element by element (through f64, which holds f32, bf16 and f64 exactly).
::testing::AssertionResult bits_equal(const std::string& what, const Tensor& a, const Tensor& b) {
  const std::vector<double> x = a.to(Device::cpu()).to(DType::f64).to_vector<double>();
  const std::vector<double> y = b.to(Device::cpu()).to(DType::f64).to_vector<double>();
  if (x.size() != y.size()) return ::testing::AssertionFailure() << what << ": sizes differ";
  for (size_t i = 0; i < x.size(); ++i) {
    if (!(x[i] == y[i])) return ::testing::AssertionFailure() << what << ": element " << i << " is " << x[i] << ", not " << y[i];
  }
  return ::testing::AssertionSuccess();
}

Tensor gpu_copy(const Tensor& t) { return t.defined() ? t.to(kGpu) : t; }

// A parameter's update operands on both devices. With a master, the parameter is bf16 and its GPU
// copy starts poisoned, so the kernel must write every element of it.
struct AdamTwin {
  backend::AdamTensors cpu, gpu;

  AdamTwin(int64_t n, bool with_master, uint64_t seed) {
    const Tensor weights = random_tensor({n}, seed, DType::f32);
    const Tensor m = random_tensor({n}, seed + 1, DType::f32), r = random_tensor({n}, seed + 2, DType::f32);
    cpu.exp_avg = m;
    cpu.exp_avg_sq = r * r;
    if (with_master) {
      cpu.master = weights;
      cpu.param = weights.to(DType::bf16);
    } else {
      cpu.param = weights;
    }
    gpu.param = with_master ? Tensor::empty({n}, {DType::bf16, kGpu}) : gpu_copy(cpu.param);
    gpu.master = gpu_copy(cpu.master);
    gpu.exp_avg = gpu_copy(cpu.exp_avg);
    gpu.exp_avg_sq = gpu_copy(cpu.exp_avg_sq);
  }

  // A fresh gradient and the step scalars for update t.
  void next(int64_t t, DType grad_dtype, uint64_t seed, double lr = 1e-2, double weight_decay = 0.1) {
    cpu.grad = random_tensor(cpu.param.shape(), seed, grad_dtype);
    gpu.grad = gpu_copy(cpu.grad);
    cpu.step = gpu.step = {.lr = lr, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = weight_decay, .t = t};
  }

  ::testing::AssertionResult matches_cpu() const {
    const Tensor& master_gpu = gpu.master.defined() ? gpu.master : gpu.param;
    const Tensor& master_cpu = cpu.master.defined() ? cpu.master : cpu.param;
    if (auto r = near("master", master_gpu, master_cpu, kMasterTolerance); !r) return r;
    if (auto r = near("exp_avg", gpu.exp_avg, cpu.exp_avg, kMasterTolerance); !r) return r;
    if (auto r = near("exp_avg_sq", gpu.exp_avg_sq, cpu.exp_avg_sq, kMasterTolerance); !r) return r;
    if (gpu.master.defined()) return is_rounded_master(gpu.param, gpu.master);
    return ::testing::AssertionSuccess();
  }
};

void run(AdamFn fn, const backend::AdamTensors& a) {
  fn(a.param, a.master, a.grad, a.exp_avg, a.exp_avg_sq, a.step, Tensor());
}

void check_adam(AdamFn cpu_fn, AdamFn gpu_fn) {
  for (DType grad_dtype : {DType::f32, DType::bf16}) {
    for (bool with_master : {true, false}) {
      for (int64_t n : kSizes) {
        AdamTwin twin(n, with_master, 10);
        for (int64_t t = 1; t <= kSteps; ++t) {
          twin.next(t, grad_dtype, 100 + t);
          run(cpu_fn, twin.cpu);
          run(gpu_fn, twin.gpu);
          EXPECT_TRUE(twin.matches_cpu()) << dtype_name(grad_dtype) << " gradients, master " << with_master
                                          << ", n " << n << ", step " << t;
        }
      }
    }
  }
}

TEST_F(OptimKernels, AdamWMatchesCpu) { check_adam(backend::cpu::adamw_update, backend::cuda::adamw_update); }

TEST_F(OptimKernels, AdamAtan2MatchesCpu) {
  check_adam(backend::cpu::adam_atan2_update, backend::cuda::adam_atan2_update);
}

// Parameters of every size with their own step counts, learning rates, gradient dtypes and masters
// (or none): one launch for the list gives the same bits as one launch per tensor, and the CPU's values.
void check_adam_list(AdamFn gpu_one, AdamListFn gpu_list, AdamListFn cpu_list) {
  std::vector<AdamTwin> one, all;
  for (size_t k = 0; k < std::size(kSizes); ++k) {
    one.emplace_back(kSizes[k], k % 2 == 0, 10 * k);
    all.emplace_back(kSizes[k], k % 2 == 0, 10 * k);
  }
  for (int64_t step = 1; step <= kSteps; ++step) {
    std::vector<backend::AdamTensors> cpu, gpu;
    for (size_t k = 0; k < all.size(); ++k) {
      const int64_t t = step + int64_t(k);
      const DType grad_dtype = k % 3 == 1 ? DType::bf16 : DType::f32;
      const double lr = 1e-2 / double(k + 1), weight_decay = 0.05 * double(k);
      one[k].next(t, grad_dtype, 100 * step + k, lr, weight_decay);
      all[k].next(t, grad_dtype, 100 * step + k, lr, weight_decay);
      run(gpu_one, one[k].gpu);
      cpu.push_back(all[k].cpu);
      gpu.push_back(all[k].gpu);
    }
    cpu_list(cpu, {});
    gpu_list(gpu, {});
    for (size_t k = 0; k < all.size(); ++k) {
      const backend::AdamTensors &a = all[k].gpu, &b = one[k].gpu;
      const std::string at = "tensor " + std::to_string(k) + ", step " + std::to_string(step);
      EXPECT_TRUE(all[k].matches_cpu()) << at;
      EXPECT_TRUE(bits_equal("master " + at, a.master.defined() ? a.master : a.param,
                             b.master.defined() ? b.master : b.param));
      EXPECT_TRUE(bits_equal("parameter " + at, a.param, b.param));
      EXPECT_TRUE(bits_equal("exp_avg " + at, a.exp_avg, b.exp_avg));
      EXPECT_TRUE(bits_equal("exp_avg_sq " + at, a.exp_avg_sq, b.exp_avg_sq));
    }
  }
}

TEST_F(OptimKernels, AdamWListEqualsOneTensorAtATime) {
  check_adam_list(backend::cuda::adamw_update, backend::cuda::adamw_update_list, backend::cpu::adamw_update_list);
}

TEST_F(OptimKernels, AdamAtan2ListEqualsOneTensorAtATime) {
  check_adam_list(backend::cuda::adam_atan2_update, backend::cuda::adam_atan2_update_list,
                  backend::cpu::adam_atan2_update_list);
}

// A clip factor (one f64 on each device, a different one per step, 1 included) folded into a list
// update: the CPU's values, and the bits of scaling f32 gradients first (today's separate pass),
// then updating without a factor.
void check_adam_list_with_clip_factor(AdamListFn gpu_list, AdamListFn cpu_list) {
  std::vector<AdamTwin> folded, scaled;
  for (size_t k = 0; k < std::size(kSizes); ++k) {
    folded.emplace_back(kSizes[k], k % 2 == 0, 10 * k);
    scaled.emplace_back(kSizes[k], k % 2 == 0, 10 * k);
  }
  const double factors[] = {0.37, 1.0, 0.0123};
  for (int64_t step = 1; step <= kSteps; ++step) {
    const Tensor factor_cpu = tensor({factors[step - 1]}, {1}, {.dtype = DType::f64});
    std::vector<backend::AdamTensors> cpu, gpu, gpu_scaled;
    for (size_t k = 0; k < folded.size(); ++k) {
      folded[k].next(step, DType::f32, 100 * step + k);
      scaled[k].next(step, DType::f32, 100 * step + k);
      backend::cuda::scale(scaled[k].gpu.grad, factors[step - 1]);
      cpu.push_back(folded[k].cpu);
      gpu.push_back(folded[k].gpu);
      gpu_scaled.push_back(scaled[k].gpu);
    }
    cpu_list(cpu, factor_cpu);
    gpu_list(gpu, factor_cpu.to(kGpu));
    gpu_list(gpu_scaled, {});
    for (size_t k = 0; k < folded.size(); ++k) {
      const backend::AdamTensors &a = folded[k].gpu, &b = scaled[k].gpu;
      const std::string at = "tensor " + std::to_string(k) + ", step " + std::to_string(step);
      EXPECT_TRUE(folded[k].matches_cpu()) << at;
      EXPECT_TRUE(bits_equal("master " + at, a.master.defined() ? a.master : a.param,
                             b.master.defined() ? b.master : b.param));
      EXPECT_TRUE(bits_equal("exp_avg " + at, a.exp_avg, b.exp_avg));
      EXPECT_TRUE(bits_equal("exp_avg_sq " + at, a.exp_avg_sq, b.exp_avg_sq));
    }
  }
}

TEST_F(OptimKernels, AdamWListFoldsTheClipFactor) {
  check_adam_list_with_clip_factor(backend::cuda::adamw_update_list, backend::cpu::adamw_update_list);
}

TEST_F(OptimKernels, AdamAtan2ListFoldsTheClipFactor) {
  check_adam_list_with_clip_factor(backend::cuda::adam_atan2_update_list, backend::cpu::adam_atan2_update_list);
}

TEST_F(OptimKernels, ClipFactorGivesTheCpuBits) {
  const double inf = std::numeric_limits<double>::infinity();
  for (double sum_squares : {0.0, 0.25, 1.0, 4.0, 1e30, inf, std::nan("")}) {
    const Tensor sum_cpu = tensor({sum_squares}, {1}, {.dtype = DType::f64});
    const Tensor factor_cpu = Tensor::empty({1}, {DType::f64}), factor_gpu = Tensor::empty({1}, {DType::f64, kGpu});
    backend::cpu::clip_factor(factor_cpu, sum_cpu, 1.0);
    backend::cuda::clip_factor(factor_gpu, sum_cpu.to(kGpu), 1.0);
    EXPECT_TRUE(bits_equal("factor for " + std::to_string(sum_squares), factor_gpu, factor_cpu));
  }
}

TEST_F(OptimKernels, SgdMatchesCpu) {
  const backend::SgdStep kinds[] = {{.lr = 0.1, .weight_decay = 0.01},
                                    {.lr = 0.1, .momentum = 0.9, .dampening = 0.1, .weight_decay = 0.01},
                                    {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01, .nesterov = true}};
  for (const backend::SgdStep& kind : kinds) {
    for (DType grad_dtype : {DType::f32, DType::bf16}) {
      for (int64_t n : kSizes) {
        const Tensor master_cpu = random_tensor({n}, 1, DType::f32);
        const Tensor param_cpu = master_cpu.to(DType::bf16), param_gpu = Tensor::empty({n}, {DType::bf16, kGpu});
        const Tensor master_gpu = master_cpu.to(kGpu);
        const Tensor buffer_cpu = kind.momentum > 0 ? zeros({n}, {DType::f32}) : Tensor();
        const Tensor buffer_gpu = gpu_copy(buffer_cpu);
        for (int t = 1; t <= kSteps; ++t) {
          backend::SgdStep step = kind;
          step.first = t == 1;
          const Tensor grad = random_tensor({n}, 100 + t, grad_dtype);
          backend::cpu::sgd_update(param_cpu, master_cpu, grad, buffer_cpu, step);
          backend::cuda::sgd_update(param_gpu, master_gpu, grad.to(kGpu), buffer_gpu, step);
          const std::string at = "momentum " + std::to_string(kind.momentum) + ", " + std::string(dtype_name(grad_dtype)) +
                                 ", n " + std::to_string(n) + ", step " + std::to_string(t);
          EXPECT_TRUE(near("master " + at, master_gpu, master_cpu, kMasterTolerance));
          EXPECT_TRUE(is_rounded_master(param_gpu, master_gpu)) << at;
          if (buffer_cpu.defined()) {
            EXPECT_TRUE(near("buffer " + at, buffer_gpu, buffer_cpu, kMasterTolerance));
          }
        }
      }
    }
  }
}

TEST_F(OptimKernels, SgdWithoutMasterUpdatesTheParameter) {
  const Tensor param_cpu = random_tensor({1000}, 1, DType::f32), param_gpu = param_cpu.to(kGpu);
  const backend::SgdStep step{.lr = 0.1, .weight_decay = 0.01};
  const Tensor grad = random_tensor({1000}, 2, DType::f32);
  backend::cpu::sgd_update(param_cpu, Tensor(), grad, Tensor(), step);
  backend::cuda::sgd_update(param_gpu, Tensor(), grad.to(kGpu), Tensor(), step);
  EXPECT_TRUE(near("parameter", param_gpu, param_cpu, kMasterTolerance));
}

TEST_F(OptimKernels, EmaMatchesCpu) {
  for (DType param_dtype : {DType::f32, DType::bf16}) {
    for (int64_t n : kSizes) {
      const Tensor shadow_cpu = random_tensor({n}, 1, DType::f32), shadow_gpu = shadow_cpu.to(kGpu);
      for (int t = 1; t <= kSteps; ++t) {
        const Tensor param = random_tensor({n}, 100 + t, param_dtype);
        backend::cpu::ema_update(shadow_cpu, param, 0.9);
        backend::cuda::ema_update(shadow_gpu, param.to(kGpu), 0.9);
        EXPECT_TRUE(near("shadow", shadow_gpu, shadow_cpu, kMasterTolerance))
            << dtype_name(param_dtype) << ", n " << n << ", step " << t;
      }
    }
  }
  // A transposed parameter is read in its logical order.
  const Tensor shadow_cpu = random_tensor({7, 13}, 1, DType::f32), shadow_gpu = shadow_cpu.to(kGpu);
  const Tensor param = random_tensor({13, 7}, 2, DType::f32);
  backend::cpu::ema_update(shadow_cpu, param.t(), 0.5);
  backend::cuda::ema_update(shadow_gpu, param.to(kGpu).t(), 0.5);
  EXPECT_TRUE(near("transposed", shadow_gpu, shadow_cpu, kMasterTolerance));
}

TEST_F(OptimKernels, EmaListUpdatesEveryShadowInOneLaunch) {
  TensorList shadows_cpu, shadows_gpu, params_cpu, params_gpu;
  int seed = 1;
  for (int64_t n : kSizes) {
    for (DType param_dtype : {DType::f32, DType::bf16}) {
      shadows_cpu.push_back(random_tensor({n}, seed++, DType::f32));
      shadows_gpu.push_back(shadows_cpu.back().to(kGpu));
      params_cpu.push_back(random_tensor({n}, seed++, param_dtype));
      params_gpu.push_back(params_cpu.back().to(kGpu));
    }
  }
  backend::cpu::ema_update_list(shadows_cpu, params_cpu, 0.99);
  backend::cuda::ema_update_list(shadows_gpu, params_gpu, 0.99);
  for (size_t i = 0; i < shadows_cpu.size(); ++i)
    EXPECT_TRUE(near("shadow", shadows_gpu[i], shadows_cpu[i], kMasterTolerance)) << "tensor " << i;
}

double gpu_sum_of_squares(const TensorList& xs) {
  const Tensor out = Tensor::empty({1}, {DType::f64, kGpu});  // poisoned: NaN unless written
  backend::cuda::sum_of_squares_list(out, xs);
  return out.to(Device::cpu()).item<double>();
}

double cpu_sum_of_squares(const TensorList& xs) {
  const Tensor out = Tensor::empty({1}, {DType::f64});
  backend::cpu::sum_of_squares_list(out, xs);
  return out.item<double>();
}

::testing::AssertionResult sums_match(double gpu, double cpu) {
  if (std::abs(gpu - cpu) <= kSumTolerance * std::abs(cpu)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "GPU " << gpu << ", CPU " << cpu;
}

TEST_F(OptimKernels, SumOfSquaresMatchesCpu) {
  for (DType dtype : {DType::f32, DType::bf16, DType::f64}) {
    for (int64_t n : kSizes) {
      const Tensor x = random_tensor({n}, 3, dtype);
      const Tensor out_gpu = Tensor::empty({1}, {DType::f64, kGpu}), out_cpu = Tensor::empty({1}, {DType::f64});
      backend::cuda::sum_of_squares(out_gpu, x.to(kGpu));
      backend::cpu::sum_of_squares(out_cpu, x);
      EXPECT_TRUE(sums_match(out_gpu.to(Device::cpu()).item<double>(), out_cpu.item<double>()))
          << dtype_name(dtype) << ", n " << n;
    }
  }
}

TEST_F(OptimKernels, SumOfSquaresOverAListIsOneDeterministicReduction) {
  TensorList cpu, gpu;
  const DType dtypes[] = {DType::f32, DType::bf16, DType::f64};
  for (size_t k = 0; k < std::size(kSizes); ++k) {
    cpu.push_back(random_tensor({kSizes[k]}, k, dtypes[k % 3]));
    gpu.push_back(cpu.back().to(kGpu));
  }
  cpu.push_back(zeros({0}, {DType::f32}));
  gpu.push_back(zeros({0}, {DType::f32, kGpu}));
  const double sum = gpu_sum_of_squares(gpu);
  EXPECT_TRUE(sums_match(sum, cpu_sum_of_squares(cpu)));
  EXPECT_EQ(std::bit_cast<uint64_t>(sum), std::bit_cast<uint64_t>(gpu_sum_of_squares(gpu)));
  EXPECT_EQ(gpu_sum_of_squares({}), 0.0);
  EXPECT_EQ(gpu_sum_of_squares({gpu.back()}), 0.0);
}

TEST_F(OptimKernels, ScaleGivesTheCpuBits) {
  for (DType dtype : {DType::f32, DType::bf16, DType::f64}) {
    for (int64_t n : kSizes) {
      const Tensor cpu = random_tensor({n}, 4, dtype), gpu = cpu.to(kGpu);
      backend::cpu::scale(cpu, 0.37);
      backend::cuda::scale(gpu, 0.37);
      EXPECT_TRUE(bits_equal("scaled " + std::string(dtype_name(dtype)) + ", n " + std::to_string(n), gpu, cpu));
    }
  }
}

TEST_F(OptimKernels, BadOperandsAreRefusedClearly) {
  const Tensor p = zeros({4}, {DType::f64, kGpu}), m = zeros({4}, {DType::f64, kGpu});
  EXPECT_EQ(testing::error_message<DTypeError>([&] { backend::cuda::adamw_update(p, Tensor(), p, m, m, {}); }),
            "adamw_update: the CUDA kernels take f32 master weights, got [4] f64 cuda:0");
  const Tensor w = zeros({4}, {DType::f32, kGpu}), g = zeros({4}, {DType::f32});
  EXPECT_EQ(testing::error_message<DeviceError>([&] { backend::cuda::adamw_update(w, Tensor(), g, w, w, {}); }),
            "adamw_update: gradient [4] f32 cpu is not on cuda:0");
  const Tensor short_state = zeros({3}, {DType::f32, kGpu});
  EXPECT_EQ(testing::error_message<ShapeError>(
                [&] { backend::cuda::adam_atan2_update(w, Tensor(), w, w, short_state, {}); }),
            "adam_atan2_update: state [3] f32 cuda:0 must be contiguous with 4 elements");
}

// ---- the optimizers, which now dispatch to these kernels ----

// bf16 parameters in two groups with f32 (GradBuffer-like) and bf16 gradients, several steps.
template <class Opt, class Options>
void check_optimizer(const Options& options) {
  TensorList cpu, gpu;
  for (size_t k = 0; k < std::size(kSizes); ++k) {
    cpu.push_back(random_tensor({kSizes[k]}, k, DType::bf16, true));
    gpu.push_back(cpu.back().detach().to(kGpu).set_requires_grad(true));
  }
  auto groups = [](const TensorList& p) {
    return std::vector<optim::ParamGroup>{{"decay", {p[0], p[2], p[4]}, 0.1, 1.0}, {"no_decay", {p[1], p[3]}, 0.0, 0.5}};
  };
  Opt opt_cpu(groups(cpu), options), opt_gpu(groups(gpu), options);
  for (int step = 1; step <= kSteps; ++step) {
    for (size_t k = 0; k < cpu.size(); ++k) {
      const Tensor g = random_tensor(cpu[k].shape(), 100 * step + k, k % 2 ? DType::bf16 : DType::f32);
      cpu[k].set_grad(g);
      gpu[k].set_grad(g.to(kGpu));
    }
    opt_cpu.step();
    opt_gpu.step();
    for (size_t k = 0; k < cpu.size(); ++k) {
      const Tensor master = opt_gpu.master_of(gpu[k]);
      EXPECT_TRUE(near("master " + std::to_string(k), master, opt_cpu.master_of(cpu[k]), kMasterTolerance));
      EXPECT_TRUE(is_rounded_master(gpu[k], master)) << "parameter " << k << ", step " << step;
    }
  }
}

TEST_F(OptimKernels, AdamWOptimizerMatchesCpu) { check_optimizer<optim::AdamW>(optim::AdamWOptions{.lr = 1e-2}); }

TEST_F(OptimKernels, AdamAtan2OptimizerMatchesCpu) {
  check_optimizer<optim::AdamATan2>(optim::AdamAtan2Options{.lr = 1e-2});
}

TEST_F(OptimKernels, SgdOptimizerMatchesCpu) {
  check_optimizer<optim::Sgd>(optim::SgdOptions{.lr = 0.1, .momentum = 0.9});
}

TEST_F(OptimKernels, EmaMatchesCpuThroughTheOptimizerLayer) {
  nn::NamedTensors cpu{{"a", random_tensor({1000}, 1, DType::bf16)}, {"b", random_tensor({7}, 2, DType::f32)}};
  nn::NamedTensors gpu{{"a", cpu[0].second.to(kGpu)}, {"b", cpu[1].second.to(kGpu)}};
  optim::Ema ema_cpu(cpu, 0.9), ema_gpu(gpu, 0.9);
  for (int step = 1; step <= kSteps; ++step) {
    for (size_t k = 0; k < cpu.size(); ++k) {
      const Tensor next = random_tensor(cpu[k].second.shape(), 10 * step + k, cpu[k].second.dtype());
      backend::copy(cpu[k].second, next);
      backend::copy(gpu[k].second, next.to(kGpu));
    }
    ema_cpu.update();
    ema_gpu.update();
  }
  for (size_t k = 0; k < cpu.size(); ++k)
    EXPECT_TRUE(near("shadow " + cpu[k].first, ema_gpu.state()[k].second, ema_cpu.state()[k].second, kMasterTolerance));
}

// The optimizer with grad_clip's factor on the GPU (folded into the launch) against the CPU.
TEST_F(OptimKernels, ClippedAdamWStepMatchesCpu) {
  TensorList cpu, gpu;
  for (size_t k = 0; k < std::size(kSizes); ++k) {
    cpu.push_back(random_tensor({kSizes[k]}, k, DType::bf16, true));
    gpu.push_back(cpu.back().detach().to(kGpu).set_requires_grad(true));
  }
  optim::AdamW opt_cpu({{"all", cpu, 0.1}}, {.lr = 1e-2}), opt_gpu({{"all", gpu, 0.1}}, {.lr = 1e-2});
  for (int step = 1; step <= kSteps; ++step) {
    for (size_t k = 0; k < cpu.size(); ++k) {
      const Tensor g = random_tensor(cpu[k].shape(), 100 * step + k, DType::f32) * double(step);
      cpu[k].set_grad(g);
      gpu[k].set_grad(g.to(kGpu));
    }
    const optim::GradClip clip_cpu = optim::grad_clip(cpu, 1.0), clip_gpu = optim::grad_clip(gpu, 1.0);
    ASSERT_LT(clip_cpu.factor.item<double>(), 1.0);
    EXPECT_NEAR(clip_gpu.factor.to(Device::cpu()).item<double>(), clip_cpu.factor.item<double>(), 1e-9);
    opt_cpu.step(clip_cpu.factor);
    opt_gpu.step(clip_gpu.factor);
    for (size_t k = 0; k < cpu.size(); ++k) {
      const Tensor master = opt_gpu.master_of(gpu[k]);
      EXPECT_TRUE(near("master " + std::to_string(k), master, opt_cpu.master_of(cpu[k]), kMasterTolerance));
      EXPECT_TRUE(is_rounded_master(gpu[k], master)) << "parameter " << k << ", step " << step;
    }
  }
}

TEST_F(OptimKernels, ClipGradNormMatchesCpu) {
  TensorList cpu, gpu;
  for (size_t k = 0; k < std::size(kSizes); ++k) {
    cpu.push_back(random_tensor({kSizes[k]}, k, DType::f32, true));
    gpu.push_back(cpu.back().detach().to(kGpu).set_requires_grad(true));
    const Tensor g = random_tensor({kSizes[k]}, 50 + k, k % 2 ? DType::bf16 : DType::f32);
    cpu.back().set_grad(g);
    gpu.back().set_grad(g.to(kGpu));
  }
  const double norm_cpu = optim::clip_grad_norm(cpu, 1.0), norm_gpu = optim::clip_grad_norm(gpu, 1.0);
  EXPECT_NEAR(norm_gpu, norm_cpu, 1e-6 * norm_cpu);
  ASSERT_GT(norm_cpu, 1.0);  // the gradients were scaled
  for (size_t k = 0; k < cpu.size(); ++k)
    EXPECT_TRUE(near("gradient " + std::to_string(k), gpu[k].grad(), cpu[k].grad(), kMasterTolerance));
}

}  // namespace
}  // namespace ponder
