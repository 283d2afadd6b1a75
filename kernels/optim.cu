// Optimizer kernels on the GPU. A launch covers a list of tensors through a chunk table: each
// tensor's operands (UpdateTensor, SquaresTensor) and one (tensor, first element) pair per kChunk
// elements, copied to the device in one buffer. A block takes one chunk at a time and its threads
// stride over the chunk's elements (coalesced), each running update_element
// (backend/optim_math.h), the CPU's per-element code.
#include "backend/cuda/optim.h"

#include <array>
#include <cstring>
#include <type_traits>
#include <utility>

#include "backend/kernels.h"
#include "kernels/rows.cuh"
#include "tensor/cuda_memory.h"

namespace ponder::backend::cuda {
namespace {
using namespace kernels;

constexpr int64_t kChunk = 16384;  // elements of one block visit (64 per thread)
constexpr int64_t kMaxGrid = 65535 * 8;

struct Chunk {
  int64_t tensor;  // index into the table's tensors
  int64_t begin;   // first element; the chunk ends kChunk later or at the tensor's end
};

// One tensor of an update with S state buffers (Adam 2, SGD with momentum 1, SGD and EMA 0).
template <class Rule, int S>
struct UpdateTensor {
  Rule rule;
  float* target;       // the f32 master weights (or EMA shadow), updated in place
  bf16* working;       // the bf16 parameter, rounded from target in the same pass; null without one
  const void* input;   // the gradient (EMA: the averaged parameter), contiguous, of input_dtype
  DType input_dtype;   // f32, bf16 or f64
  float* state[S > 0 ? S : 1];
  int64_t n;
};

struct SquaresTensor {
  const void* data;
  DType dtype;
  int64_t n;
};

// The tensors and their chunks on the device. `buffer` owns both; dropping it once the kernels are
// queued is safe, as the allocator reuses memory in stream order.
template <class Entry>
struct DeviceTable {
  Tensor buffer;
  const Entry* tensors = nullptr;
  const Chunk* chunks = nullptr;
  int64_t chunk_count = 0;
};

template <class Entry>
DeviceTable<Entry> upload(const std::vector<Entry>& tensors, Device device) {
  static_assert(std::is_trivially_copyable_v<Entry> && sizeof(Entry) % alignof(Chunk) == 0);
  std::vector<Chunk> chunks;
  for (size_t k = 0; k < tensors.size(); ++k)
    for (int64_t begin = 0; begin < tensors[k].n; begin += kChunk) chunks.push_back({int64_t(k), begin});
  DeviceTable<Entry> table;
  table.chunk_count = static_cast<int64_t>(chunks.size());
  if (chunks.empty()) return table;
  const size_t tensor_bytes = tensors.size() * sizeof(Entry), chunk_bytes = chunks.size() * sizeof(Chunk);
  std::vector<unsigned char> host(tensor_bytes + chunk_bytes);
  std::memcpy(host.data(), tensors.data(), tensor_bytes);
  std::memcpy(host.data() + tensor_bytes, chunks.data(), chunk_bytes);
  table.buffer = Tensor::empty({int64_t(host.size())}, {DType::u8, device});
  // Pageable host memory is staged before the call returns, so `host` may go right after.
  cuda_copy_bytes(table.buffer.data_ptr(), device, host.data(), Device::cpu(), host.size());
  auto* base = static_cast<unsigned char*>(table.buffer.data_ptr());
  table.tensors = reinterpret_cast<const Entry*>(base);
  table.chunks = reinterpret_cast<const Chunk*>(base + tensor_bytes);
  return table;
}

unsigned chunk_grid(int64_t chunks) { return static_cast<unsigned>(std::min(chunks, kMaxGrid)); }

cudaStream_t stream_on(Device device) { return ::ponder::cuda::compute_stream(device.index); }

// ---- updates ----

template <class In, class Rule, int S, size_t... K>
__device__ __forceinline__ void update_range(const UpdateTensor<Rule, S>& e, float input_scale, int64_t begin,
                                             int64_t end, std::index_sequence<K...>) {
  const In* input = static_cast<const In*>(e.input);
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x)
    backend::update_element(e.rule, i, e.target, e.working, input, input_scale, e.state[K]...);
}

// input_scale: one f64 the inputs are multiplied by (the clip factor), or null for none.
template <class Rule, int S>
__global__ void update_chunks(const UpdateTensor<Rule, S>* tensors, const Chunk* chunks, int64_t count,
                              const double* input_scale) {
  // Rounded to f32 as the CPU rounds it for f32 masters (and as the scale pass rounded it for f32 gradients).
  const float scale = input_scale ? static_cast<float>(*input_scale) : 1.0f;
  for (int64_t c = blockIdx.x; c < count; c += gridDim.x) {
    const Chunk chunk = chunks[c];
    const UpdateTensor<Rule, S> e = tensors[chunk.tensor];  // a local copy: the stores cannot alias it
    const int64_t end = std::min(e.n, chunk.begin + kChunk);
    constexpr auto states = std::make_index_sequence<S>{};
    switch (e.input_dtype) {
      case DType::bf16: update_range<bf16>(e, scale, chunk.begin, end, states); break;
      case DType::f64: update_range<double>(e, scale, chunk.begin, end, states); break;
      default: update_range<float>(e, scale, chunk.begin, end, states); break;
    }
  }
}

// `input_scale` as backend/cpu/optim.h's grad_scale (undefined for none).
template <class Rule, int S>
void launch_updates(const char* kernel, const std::vector<UpdateTensor<Rule, S>>& tensors, Device device,
                    const Tensor& input_scale = {}) {
  cpu::check_grad_scale(kernel, input_scale, device);
  const DeviceTable<UpdateTensor<Rule, S>> table = upload(tensors, device);
  if (table.chunk_count == 0) return;
  update_chunks<<<chunk_grid(table.chunk_count), kThreads, 0, stream_on(device)>>>(
      table.tensors, table.chunks, table.chunk_count, input_scale.defined() ? input_scale.data<double>() : nullptr);
  check_launch(kernel);
}

void check_on_gpu(const char* kernel, const Tensor& t) {
  PONDER_CHECK(t.is_cuda(), DeviceError, kernel, ": ", describe(t), " is not on a CUDA device");
}

void check_operand(const char* kernel, const char* what, const Tensor& t, int64_t n, Device device) {
  PONDER_CHECK(t.device() == device, DeviceError, kernel, ": ", what, " ", describe(t), " is not on ", device);
  PONDER_CHECK(t.is_contiguous() && t.numel() == n, ShapeError, kernel, ": ", what, " ", describe(t),
               " must be contiguous with ", n, " elements");
}

void check_f32(const char* kernel, const char* what, const Tensor& t) {
  PONDER_CHECK(t.dtype() == DType::f32, DTypeError, kernel, ": the CUDA kernels take f32 ", what, ", got ",
               describe(t));
}

// The read-only input of an update, contiguous (a copy, if needed, is kept alive in `keep`).
Tensor checked_input(const char* kernel, const char* what, const Tensor& input, int64_t n, Device device,
                            TensorList& keep) {
  PONDER_CHECK(input.device() == device, DeviceError, kernel, ": ", what, " ", describe(input), " is not on ", device);
  PONDER_CHECK(input.numel() == n, ShapeError, kernel, ": ", what, " ", describe(input), " does not have ", n,
               " elements");
  PONDER_CHECK(input.is_floating_point(), DTypeError, kernel, ": ", what, " ", describe(input),
               " is not floating point");
  keep.push_back(backend::contiguous(input));
  return keep.back();
}

// The checked operands of one parameter's update on `device`.
template <class Rule, int S>
UpdateTensor<Rule, S> update_tensor(const char* kernel, const Rule& rule, const Tensor& param, const Tensor& master,
                                    const Tensor& grad, const std::array<Tensor, S>& state, Device device,
                                    TensorList& keep) {
  const Tensor& target = master.defined() ? master : param;
  const int64_t n = param.numel();
  check_operand(kernel, "parameter", param, n, device);
  check_operand(kernel, "master", target, n, device);
  check_f32(kernel, "master weights", target);
  PONDER_CHECK(!master.defined() || param.dtype() == DType::bf16, DTypeError, kernel,
               ": a parameter with f32 master weights must be bf16, got ", describe(param));
  const Tensor g = checked_input(kernel, "gradient", grad, n, device, keep);
  UpdateTensor<Rule, S> e{rule, target.data<float>(), master.defined() ? param.data<bf16>() : nullptr,
                          g.data_ptr(), g.dtype(), {}, n};
  for (int k = 0; k < S; ++k) {
    check_operand(kernel, "state", state[k], n, device);
    check_f32(kernel, "state", state[k]);
    e.state[k] = state[k].template data<float>();
  }
  return e;
}

template <template <class> class Rule>
void adam_update_list(const char* kernel, const std::vector<AdamTensors>& tensors, const Tensor& grad_scale) {
  if (tensors.empty()) return;
  const Device device = tensors.front().param.device();
  check_on_gpu(kernel, tensors.front().param);
  TensorList keep;
  std::vector<UpdateTensor<Rule<float>, 2>> entries;
  for (const AdamTensors& t : tensors) {
    entries.push_back(update_tensor<Rule<float>, 2>(kernel, Rule<float>(t.step), t.param, t.master, t.grad,
                                                    {t.exp_avg, t.exp_avg_sq}, device, keep));
  }
  launch_updates(kernel, entries, device, grad_scale);
}

template <int S>
void sgd_launch(const Tensor& param, const Tensor& master, const Tensor& grad, const std::array<Tensor, S>& state,
                const SgdStep& step, const Tensor& grad_scale) {
  check_on_gpu("sgd_update", param);
  TensorList keep;
  const Device device = param.device();
  const auto e = update_tensor<SgdRule<float>, S>("sgd_update", SgdRule<float>(step), param, master, grad, state,
                                                   device, keep);
  launch_updates<SgdRule<float>, S>("sgd_update", {e}, device, grad_scale);
}

// ---- sums of squares ----

template <class T>
__device__ __forceinline__ double squares_in(const void* data, int64_t begin, int64_t end) {
  const T* x = static_cast<const T*>(data);
  double s = 0.0;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const double v = static_cast<compute_t<T>>(x[i]);
    s += v * v;
  }
  return s;
}

// partial[c] = Σ x² over chunk c, each thread's share summed in order, then a fixed tree.
__global__ void chunk_squares(const SquaresTensor* tensors, const Chunk* chunks, int64_t count, double* partial) {
  __shared__ double scratch[kWarp];
  for (int64_t c = blockIdx.x; c < count; c += gridDim.x) {
    const Chunk chunk = chunks[c];
    const SquaresTensor t = tensors[chunk.tensor];
    const int64_t end = std::min(t.n, chunk.begin + kChunk);
    double s;
    switch (t.dtype) {
      case DType::bf16: s = squares_in<bf16>(t.data, chunk.begin, end); break;
      case DType::f64: s = squares_in<double>(t.data, chunk.begin, end); break;
      default: s = squares_in<float>(t.data, chunk.begin, end); break;
    }
    s = block_reduce(s, Plus<double>{}, scratch);
    if (threadIdx.x == 0) partial[c] = s;
  }
}

// out = the `count` partial sums combined by one block in a fixed order (0 when there are none).
__global__ void sum_partials(const double* partial, int64_t count, double* out) {
  __shared__ double scratch[kWarp];
  double s = 0.0;
  for (int64_t k = threadIdx.x; k < count; k += blockDim.x) s += partial[k];
  s = block_reduce(s, Plus<double>{}, scratch);
  if (threadIdx.x == 0) *out = s;
}

void squares_launch(const char* kernel, const Tensor& out, const TensorList& xs) {
  check_on_gpu(kernel, out);
  PONDER_CHECK(out.numel() == 1 && out.dtype() == DType::f64, DTypeError, kernel, ": out ", describe(out),
               " must be one f64 element");
  const Device device = out.device();
  TensorList keep;
  std::vector<SquaresTensor> tensors;
  for (const Tensor& x : xs) {
    const Tensor c = checked_input(kernel, "tensor", x, x.numel(), device, keep);
    tensors.push_back({c.data_ptr(), c.dtype(), c.numel()});
  }
  cudaStream_t stream = stream_on(device);
  const DeviceTable<SquaresTensor> table = upload(tensors, device);
  Tensor partial;
  if (table.chunk_count > 0) {
    partial = Tensor::empty({table.chunk_count}, {DType::f64, device});
    chunk_squares<<<chunk_grid(table.chunk_count), kThreads, 0, stream>>>(table.tensors, table.chunks,
                                                                          table.chunk_count, partial.data<double>());
    check_launch(kernel);
  }
  sum_partials<<<1, kThreads, 0, stream>>>(partial.defined() ? partial.data<double>() : nullptr, table.chunk_count,
                                           out.data<double>());
  check_launch(kernel);
}

// ---- scale, clip factor ----

template <class T>
__global__ void scale_kernel(T* x, int64_t n, compute_t<T> factor) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    x[i] = static_cast<T>(factor * static_cast<compute_t<T>>(x[i]));
}

__global__ void clip_factor_kernel(double* factor, const double* sum_squares, double max_norm) {
  *factor = backend::clip_factor_of(*sum_squares, max_norm);
}

}  // namespace

void adamw_update(const Tensor& param, const Tensor& master, const Tensor& grad, const Tensor& exp_avg,
                  const Tensor& exp_avg_sq, const AdamStep& step, const Tensor& grad_scale) {
  adam_update_list<AdamWRule>("adamw_update", {{param, master, grad, exp_avg, exp_avg_sq, step}}, grad_scale);
}

void adam_atan2_update(const Tensor& param, const Tensor& master, const Tensor& grad, const Tensor& exp_avg,
                       const Tensor& exp_avg_sq, const AdamStep& step, const Tensor& grad_scale) {
  adam_update_list<AdamAtan2Rule>("adam_atan2_update", {{param, master, grad, exp_avg, exp_avg_sq, step}},
                                  grad_scale);
}

void adamw_update_list(const std::vector<AdamTensors>& tensors, const Tensor& grad_scale) {
  adam_update_list<AdamWRule>("adamw_update", tensors, grad_scale);
}

void adam_atan2_update_list(const std::vector<AdamTensors>& tensors, const Tensor& grad_scale) {
  adam_update_list<AdamAtan2Rule>("adam_atan2_update", tensors, grad_scale);
}

void sgd_update(const Tensor& param, const Tensor& master, const Tensor& grad, const Tensor& momentum_buffer,
                const SgdStep& step, const Tensor& grad_scale) {
  if (momentum_buffer.defined()) {
    sgd_launch<1>(param, master, grad, {momentum_buffer}, step, grad_scale);
  } else {
    sgd_launch<0>(param, master, grad, {}, step, grad_scale);
  }
}

void ema_update(const Tensor& shadow, const Tensor& param, double decay) { ema_update_list({shadow}, {param}, decay); }

void ema_update_list(const TensorList& shadows, const TensorList& params, double decay) {
  PONDER_CHECK(shadows.size() == params.size(), ValueError, "ema_update_list: ", shadows.size(), " shadows for ",
               params.size(), " parameters");
  if (shadows.empty()) return;
  check_on_gpu("ema_update", shadows.front());
  const Device device = shadows.front().device();
  TensorList keep;
  std::vector<UpdateTensor<EmaRule<float>, 0>> entries;
  for (size_t i = 0; i < shadows.size(); ++i) {
    const int64_t n = shadows[i].numel();
    check_operand("ema_update", "shadow", shadows[i], n, device);
    check_f32("ema_update", "shadows", shadows[i]);
    const Tensor x = checked_input("ema_update", "parameter", params[i], n, device, keep);
    entries.push_back({EmaRule<float>(decay), shadows[i].data<float>(), nullptr, x.data_ptr(), x.dtype(), {}, n});
  }
  launch_updates("ema_update_list", entries, device);
}

void sum_of_squares(const Tensor& out, const Tensor& x) { squares_launch("sum_of_squares", out, {x}); }

void sum_of_squares_list(const Tensor& out, const TensorList& xs) { squares_launch("sum_of_squares_list", out, xs); }

void scale(const Tensor& x, double factor) {
  check_on_gpu("scale", x);
  PONDER_CHECK(x.is_contiguous(), ShapeError, "scale: ", describe(x), " must be contiguous");
  const int64_t n = x.numel();
  if (n == 0) return;
  visit_floating(x.dtype(), "scale", [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    scale_kernel<T><<<grid_for(n), kThreads, 0, stream_of(x)>>>(x.data<T>(), n, C(factor));
  });
  check_launch("scale");
}

void clip_factor(const Tensor& factor, const Tensor& sum_squares, double max_norm) {
  check_on_gpu("clip_factor", factor);
  for (const Tensor* t : {&factor, &sum_squares}) {
    PONDER_CHECK(t->numel() == 1 && t->dtype() == DType::f64 && t->device() == factor.device(), DTypeError,
                 "clip_factor: ", describe(*t), " must be one f64 element on ", factor.device());
  }
  clip_factor_kernel<<<1, 1, 0, stream_on(factor.device())>>>(factor.data<double>(), sum_squares.data<double>(),
                                                              max_norm);
  check_launch("clip_factor");
}

}  // namespace ponder::backend::cuda
