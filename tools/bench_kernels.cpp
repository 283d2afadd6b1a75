// GPU benchmark of the memory-bound kernels (issue 3): time, GB/s counting every byte read and
// written once, and the fraction of the measured copy bandwidth (cudaMemcpyAsync device to device,
// the first row), at the HRM-Text 1B sizes: 8192 tokens (two rows of 4096) x hidden 1536 or FFN
// 4096, and the optimizer over 16 tensors of 2048 x 2048 (fp32 masters and state, fp32 gradients).
// Timing as bench_support.h describes. Target: >= 80% of the copy bandwidth.
//
// Options: --dtype bf16|f32|both (default both) --reps N (default 50)
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "backend/cuda/elementwise.h"
#include "backend/cuda/fused.h"
#include "backend/cuda/norm.h"
#include "backend/cuda/optim.h"
#include "bench_support.h"
#include "ops/ops.h"
#include "tensor/cuda_context.h"
#include "tensor/cuda_memory.h"

namespace {

using namespace ponder;
using backend::BinaryOp;
using backend::UnaryOp;

constexpr int64_t kTokens = 2 * 4096, kHidden = 1536, kFfn = 4096;
constexpr int64_t kParamTensors = 16, kParamRows = 2048, kParamCols = 2048;
constexpr int kWarmup = 5;

// One kernel: its operands are made by `operands`, which returns the launch over them; `bytes`
// is what one launch reads plus writes.
struct Case {
  std::string name, shape;
  int64_t bytes;
  std::function<std::function<void()>(Generator&)> operands;
};

Tensor random(const Shape& shape, DType dtype, Generator& gen) { return bench::random_device(shape, dtype, gen); }
Tensor f32_empty(const Shape& shape) { return Tensor::empty(shape, {DType::f32, Device::cuda(0)}); }

std::vector<Case> cases(DType t) {
  const int64_t s = element_size(t), nd = kTokens * kHidden, nf = kTokens * kFfn, rows = kTokens, d = kHidden;
  const Shape hidden{kTokens, kHidden}, ffn{kTokens, kFfn};
  const std::string hidden_shape = "8192x1536", ffn_shape = "8192x4096";
  auto empty = [t](const Shape& shape) { return Tensor::empty(shape, {t, Device::cuda(0)}); };
  std::vector<Case> out;
  out.push_back({"copy (cudaMemcpy)", ffn_shape, 2 * nf * s, [=](Generator& g) {
                   Tensor src = random(ffn, t, g), dst = empty(ffn);
                   return [=] {
                     bench::check(cudaMemcpyAsync(dst.data_ptr(), src.data_ptr(), size_t(nf * s),
                                                  cudaMemcpyDeviceToDevice, cuda::compute_stream(0)),
                                  "cudaMemcpyAsync");
                   };
                 }});
  out.push_back({"copy", ffn_shape, 2 * nf * s, [=](Generator& g) {
                   Tensor src = random(ffn, t, g), dst = empty(ffn);
                   return [=] { backend::cuda::copy(dst, src); };
                 }});
  for (auto [name, op] : {std::pair{"add", BinaryOp::add}, std::pair{"mul", BinaryOp::mul}}) {
    out.push_back({name, ffn_shape, 3 * nf * s, [=](Generator& g) {
                     Tensor a = random(ffn, t, g), b = random(ffn, t, g), c = empty(ffn);
                     return [=] { backend::cuda::binary(op, c, a, b); };
                   }});
  }
  out.push_back({"rms_norm fwd", hidden_shape, 2 * nd * s + d * s + rows * 4, [=](Generator& g) {
                   Tensor x = random(hidden, t, g), w = random({d}, t, g), y = empty(hidden), rstd = f32_empty({rows});
                   return [=] { backend::cuda::rms_norm_forward(y, rstd, x, w, 1e-5); };
                 }});
  out.push_back({"rms_norm bwd", hidden_shape, 3 * nd * s + 2 * d * s + rows * 4, [=](Generator& g) {
                   Tensor x = random(hidden, t, g), w = random({d}, t, g), dy = random(hidden, t, g);
                   Tensor rstd = f32_empty({rows}), y = empty(hidden), dx = empty(hidden), dw = empty({d});
                   backend::cuda::rms_norm_forward(y, rstd, x, w, 1e-5);
                   return [=] { backend::cuda::rms_norm_backward(dx, dw, dy, x, w, rstd, false); };
                 }});
  // Unweighted (HRM-Text's norms): no weight read, no weight gradient; backward reads the output.
  out.push_back({"rms_norm fwd no w", hidden_shape, 2 * nd * s + rows * 4, [=](Generator& g) {
                   Tensor x = random(hidden, t, g), y = empty(hidden), rstd = f32_empty({rows});
                   return [=] { backend::cuda::rms_norm_forward(y, rstd, x, Tensor(), 1e-5); };
                 }});
  out.push_back({"rms_norm bwd no w", hidden_shape, 3 * nd * s + rows * 4, [=](Generator& g) {
                   Tensor x = random(hidden, t, g), dy = random(hidden, t, g);
                   Tensor rstd = f32_empty({rows}), y = empty(hidden), dx = empty(hidden);
                   backend::cuda::rms_norm_forward(y, rstd, x, Tensor(), 1e-5);
                   return [=] { backend::cuda::rms_norm_backward(dx, Tensor(), dy, y, Tensor(), rstd, true); };
                 }});
  out.push_back({"add+rms_norm fwd", hidden_shape, 4 * nd * s + d * s + rows * 4, [=](Generator& g) {
                   Tensor x = random(hidden, t, g), r = random(hidden, t, g), w = random({d}, t, g);
                   Tensor sum = empty(hidden), y = empty(hidden), rstd = f32_empty({rows});
                   return [=] { backend::cuda::add_rms_norm_forward(sum, y, rstd, x, r, w, 1e-5); };
                 }});
  out.push_back({"add+rms_norm bwd", hidden_shape, 4 * nd * s + 2 * d * s + rows * 4, [=](Generator& g) {
                   Tensor x = random(hidden, t, g), r = random(hidden, t, g), w = random({d}, t, g);
                   Tensor sum = empty(hidden), y = empty(hidden), rstd = f32_empty({rows});
                   backend::cuda::add_rms_norm_forward(sum, y, rstd, x, r, w, 1e-5);
                   Tensor grad_sum = random(hidden, t, g), grad_y = random(hidden, t, g);
                   Tensor grad_input = empty(hidden), grad_w = empty({d});
                   return [=] {
                     backend::cuda::add_rms_norm_backward(grad_input, grad_w, grad_sum, grad_y, sum, w, rstd, false);
                   };
                 }});
  // HRM-Text's: unweighted, backward reads the normalised output.
  out.push_back({"add+rms_norm bwd no w", hidden_shape, 4 * nd * s + rows * 4, [=](Generator& g) {
                   Tensor x = random(hidden, t, g), r = random(hidden, t, g);
                   Tensor sum = empty(hidden), y = empty(hidden), rstd = f32_empty({rows});
                   backend::cuda::add_rms_norm_forward(sum, y, rstd, x, r, Tensor(), 1e-5);
                   Tensor grad_sum = random(hidden, t, g), grad_y = random(hidden, t, g), grad_input = empty(hidden);
                   return [=] {
                     backend::cuda::add_rms_norm_backward(grad_input, Tensor(), grad_sum, grad_y, y, Tensor(), rstd, true);
                   };
                 }});
  // RoPE of q and k, [tokens, 12 heads, 128] each.
  out.push_back({"rope q+k", hidden_shape, 4 * nd * s + rows * 8, [=](Generator& g) {
                   const Shape heads{kTokens, kHidden / 128, 128};
                   Tensor q = random(heads, t, g), k = random(heads, t, g), out_q = empty(heads), out_k = empty(heads);
                   Tensor positions = arange(0, kTokens).to(Device::cuda(0));
                   return [=] { backend::cuda::rope_qk(out_q, out_k, q, k, positions, 10000.0, false); };
                 }});
  out.push_back({"swiglu fwd", ffn_shape, 3 * nf * s, [=](Generator& g) {
                   Tensor gate = random(ffn, t, g), up = random(ffn, t, g), y = empty(ffn);
                   return [=] { backend::cuda::gated_product(UnaryOp::silu, y, gate, up); };
                 }});
  out.push_back({"swiglu bwd", ffn_shape, 5 * nf * s, [=](Generator& g) {
                   Tensor gate = random(ffn, t, g), up = random(ffn, t, g), dy = random(ffn, t, g);
                   Tensor dgate = empty(ffn), dup = empty(ffn);
                   return [=] { backend::cuda::gated_product_backward(UnaryOp::silu, dgate, dup, dy, gate, up); };
                 }});
  // A bf16 parameter has an f32 master (read and written) and is itself written; an f32 one is
  // its own master. Gradients, exp_avg and exp_avg_sq are f32.
  const int64_t params = kParamTensors * kParamRows * kParamCols;
  const int64_t per_param = (t == DType::bf16 ? 2 + 8 : 8) + 4 + 8 + 8;
  const std::string param_shape = std::to_string(kParamTensors) + "x2048x2048";
  using Update = void (*)(const std::vector<backend::AdamTensors>&, const Tensor&);
  for (auto [name, update] : {std::pair<const char*, Update>{"adamw step", backend::cuda::adamw_update_list},
                              std::pair<const char*, Update>{"adam_atan2 step", backend::cuda::adam_atan2_update_list}}) {
    out.push_back({name, param_shape, params * per_param, [=](Generator& g) {
                     std::vector<backend::AdamTensors> list;
                     const Shape p{kParamRows, kParamCols};
                     const backend::AdamStep step{.lr = 1e-4, .beta1 = 0.9, .beta2 = 0.95, .weight_decay = 0.1};
                     for (int64_t i = 0; i < kParamTensors; ++i) {
                       Tensor master = random(p, DType::f32, g);
                       Tensor param = t == DType::bf16 ? master.to(DType::bf16) : master;
                       list.push_back({param, t == DType::bf16 ? master : Tensor(), random(p, DType::f32, g),
                                       zeros(p, {DType::f32, Device::cuda(0)}), zeros(p, {DType::f32, Device::cuda(0)}),
                                       step});
                     }
                     return [=] { update(list, Tensor()); };
                   }});
  }
  return out;
}

// Prints one row per case; the first case (the copy) sets the bandwidth the others are held to.
void run(DType t, int reps, double& copy_gbps) {
  Generator gen(1);
  for (const Case& c : cases(t)) {
    std::vector<std::function<void()>> sets;
    for (int i = 0, n = bench::rotation_copies(c.bytes); i < n; ++i) sets.push_back(c.operands(gen));
    const double ms = bench::median_ms([&](int rep) { sets[rep % sets.size()](); }, kWarmup, reps);
    const double gbps = double(c.bytes) / (ms / 1e3) / 1e9;
    if (copy_gbps == 0) copy_gbps = gbps;
    std::printf("%-18s %-5s %-14s %10.1f %10.0f %8.1f%%\n", c.name.c_str(), std::string(dtype_name(t)).c_str(),
                c.shape.c_str(), ms * 1e3, gbps, 100.0 * gbps / copy_gbps);
    cuda_empty_cache(0);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<DType> dtypes = {DType::bf16, DType::f32};
  int reps = 50;
  for (int i = 1; i < argc; i += 2) {
    const std::string key = argv[i], value = i + 1 < argc ? argv[i + 1] : "";
    if (key == "--dtype" && (value == "bf16" || value == "f32")) {
      dtypes = {parse_dtype(value)};
    } else if (key == "--dtype" && value == "both") {
    } else if (key == "--reps" && !value.empty() && std::atoi(value.c_str()) > 0) {
      reps = std::atoi(value.c_str());
    } else {
      std::fprintf(stderr, "bench_kernels: bad option %s %s (--dtype bf16|f32|both, --reps N > 0)\n", key.c_str(),
                   value.c_str());
      return 2;
    }
  }
  if (cuda_device_count() == 0) {
    std::fprintf(stderr, "bench_kernels: no CUDA device\n");
    return 1;
  }
  std::printf("memory-bound kernels; GB/s counts bytes read + written; %% of the cudaMemcpy bandwidth\n");
  std::printf("%-18s %-5s %-14s %10s %10s %9s\n", "kernel", "dtype", "shape", "us", "GB/s", "of copy");
  double copy_gbps = 0;  // from the first dtype's copy row
  for (DType t : dtypes) run(t, reps, copy_gbps);
  return 0;
}
