// RMSNorm and LayerNorm on the GPU. A warp (short rows) or a block (long rows) owns each row and
// reads it in 16-byte packs when the row length and the pointers allow; statistics are fp32.
// Parameter gradients are summed over rows in two deterministic stages: each block sums a chunk
// of rows for 32 columns into a [chunks, D] fp32 buffer, then one thread per column adds the
// chunks in order.
#include <algorithm>
#include <initializer_list>

#include "backend/cuda/norm.h"
#include "kernels/norm.cuh"
#include "kernels/row_groups.cuh"

namespace ponder::kernels {
namespace {

// Whether every defined operand can be read in packs of V: rows of D elements stay 16-byte aligned.
bool packable(int64_t d, int v, std::initializer_list<const Tensor*> operands) {
  if (d % v != 0) return false;
  for (const Tensor* t : operands)
    if (!aligned16(*t)) return false;
  return true;
}

template <class T>
struct ForwardArgs {
  int64_t rows, d;
  int group;
  const T* x;
  const T* residual;
  T* sum;
  const T* weight;
  const T* bias;
  T* y;
  float* mean;
  float* rstd;
  float eps;
};

template <class T, int V>
__global__ void __launch_bounds__(kMaxRowThreads) forward_kernel(ForwardArgs<T> a) {
  const int lane = threadIdx.x % a.group;
  const int64_t row = int64_t(blockIdx.x) * (blockDim.x / a.group) + threadIdx.x / a.group;
  if (row >= a.rows) return;  // whole warps of the last block only (warp-per-row launches)
  const int64_t packs = a.d / V, first = row * packs;
  const T* x = a.x;
  if (a.residual) {
    for (int64_t p = lane; p < packs; p += a.group) {
      Pack<T, V> u = load_pack<V>(a.x, first + p), r = load_pack<V>(a.residual, first + p), s;
#pragma unroll
      for (int j = 0; j < V; ++j) s.v[j] = T(float(u.v[j]) + float(r.v[j]));
      store_pack<V>(a.sum, first + p, s);
    }
    x = a.sum;  // normalise the rounded sum; each thread rereads only the packs it wrote
  }
  float mu = 0;
  if (a.mean) {
    float s = 0;
    for (int64_t p = lane; p < packs; p += a.group) {
      Pack<T, V> u = load_pack<V>(x, first + p);
#pragma unroll
      for (int j = 0; j < V; ++j) s += float(u.v[j]);
    }
    mu = group_sum(s, a.group) / float(a.d);
  }
  // The variance about the mean (a second pass), as the CPU kernel, for accuracy.
  float squares = 0;
  for (int64_t p = lane; p < packs; p += a.group) {
    Pack<T, V> u = load_pack<V>(x, first + p);
#pragma unroll
    for (int j = 0; j < V; ++j) {
      const float c = float(u.v[j]) - mu;
      squares += c * c;
    }
  }
  const float rs = 1.0f / sqrtf(group_sum(squares, a.group) / float(a.d) + a.eps);
  if (lane == 0) {
    if (a.mean) a.mean[row] = mu;
    a.rstd[row] = rs;
  }
  for (int64_t p = lane; p < packs; p += a.group) {
    Pack<T, V> u = load_pack<V>(x, first + p), w{}, b{}, o;
    if (a.weight) w = load_pack<V>(a.weight, p);
    if (a.bias) b = load_pack<V>(a.bias, p);
#pragma unroll
    for (int j = 0; j < V; ++j) {
      float v = (float(u.v[j]) - mu) * rs;
      if (a.weight) v *= float(w.v[j]);
      if (a.bias) v += float(b.v[j]);
      o.v[j] = T(v);
    }
    store_pack<V>(a.y, first + p, o);
  }
}

template <class T>
struct InputGradArgs {
  int64_t rows, d;
  int group;
  const T* x;
  const T* weight;
  const float* mean;
  const float* rstd;
  const T* grad;
  const T* grad_extra;
  T* grad_x;
};

// With gw = g * weight and xhat = (x - mean) * rstd:
// dx = rstd * (gw - mean(gw) - xhat * mean(gw * xhat)) [+ extra]; RMSNorm has no mean(gw) term.
template <class T, int V>
__global__ void __launch_bounds__(kMaxRowThreads) input_grad_kernel(InputGradArgs<T> a) {
  const int lane = threadIdx.x % a.group;
  const int64_t row = int64_t(blockIdx.x) * (blockDim.x / a.group) + threadIdx.x / a.group;
  if (row >= a.rows) return;
  const int64_t packs = a.d / V, first = row * packs;
  const float mu = a.mean ? a.mean[row] : 0.0f, rs = a.rstd[row];
  float sum_gw = 0, sum_gw_xhat = 0;
  for (int64_t p = lane; p < packs; p += a.group) {
    Pack<T, V> u = load_pack<V>(a.x, first + p), g = load_pack<V>(a.grad, first + p), w{};
    if (a.weight) w = load_pack<V>(a.weight, p);
#pragma unroll
    for (int j = 0; j < V; ++j) {
      const float gw = a.weight ? float(g.v[j]) * float(w.v[j]) : float(g.v[j]);
      sum_gw += gw;
      sum_gw_xhat += gw * ((float(u.v[j]) - mu) * rs);
    }
  }
  const float mean_gw = a.mean ? group_sum(sum_gw, a.group) / float(a.d) : 0.0f;
  const float mean_gw_xhat = group_sum(sum_gw_xhat, a.group) / float(a.d);
  for (int64_t p = lane; p < packs; p += a.group) {
    Pack<T, V> u = load_pack<V>(a.x, first + p), g = load_pack<V>(a.grad, first + p), w{}, e{}, o;
    if (a.weight) w = load_pack<V>(a.weight, p);
    if (a.grad_extra) e = load_pack<V>(a.grad_extra, first + p);
#pragma unroll
    for (int j = 0; j < V; ++j) {
      const float gw = a.weight ? float(g.v[j]) * float(w.v[j]) : float(g.v[j]);
      const float xhat = (float(u.v[j]) - mu) * rs;
      float dx = rs * (gw - mean_gw - xhat * mean_gw_xhat);
      if (a.grad_extra) dx += float(e.v[j]);
      o.v[j] = T(dx);
    }
    store_pack<V>(a.grad_x, first + p, o);
  }
}

constexpr int kTileColumns = 32, kTileRows = 8;

template <class T>
struct PartialArgs {
  int64_t rows, d, chunk;
  const T* x;
  const T* grad;
  const float* mean;
  const float* rstd;
  float* weight_partial;  // [chunks, D] sums of g * xhat, or null
  float* bias_partial;    // [chunks, D] sums of g, or null
};

// Block (tile, chunk) sums rows [chunk * c, chunk * (c + 1)) of columns [32 tile, 32 tile + 32):
// each of the 8 thread rows takes every 8th row, then thread row 0 adds the 8 in order.
template <class T>
__global__ void column_partials_kernel(PartialArgs<T> a) {
  const int64_t j = int64_t(blockIdx.x) * kTileColumns + threadIdx.x;
  const int64_t r0 = int64_t(blockIdx.y) * a.chunk, r1 = r0 + a.chunk < a.rows ? r0 + a.chunk : a.rows;
  float sum_g_xhat = 0, sum_g = 0;
  if (j < a.d) {
    for (int64_t r = r0 + threadIdx.y; r < r1; r += kTileRows) {
      const float g = float(a.grad[r * a.d + j]);
      const float mu = a.mean ? a.mean[r] : 0.0f;
      sum_g_xhat += g * ((float(a.x[r * a.d + j]) - mu) * a.rstd[r]);
      sum_g += g;
    }
  }
  __shared__ float tile_w[kTileRows][kTileColumns], tile_b[kTileRows][kTileColumns];
  tile_w[threadIdx.y][threadIdx.x] = sum_g_xhat;
  tile_b[threadIdx.y][threadIdx.x] = sum_g;
  __syncthreads();
  if (threadIdx.y != 0 || j >= a.d) return;
  float w = 0, b = 0;
  for (int y = 0; y < kTileRows; ++y) {
    w += tile_w[y][threadIdx.x];
    b += tile_b[y][threadIdx.x];
  }
  if (a.weight_partial) a.weight_partial[blockIdx.y * a.d + j] = w;
  if (a.bias_partial) a.bias_partial[blockIdx.y * a.d + j] = b;
}

template <class T>
__global__ void sum_chunks_kernel(int64_t chunks, int64_t d, const float* partial, T* out) {
  for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < d; j += int64_t(gridDim.x) * blockDim.x) {
    float s = 0;
    for (int64_t c = 0; c < chunks; ++c) s += partial[c * d + j];
    out[j] = T(s);
  }
}

// Chunks sized from the problem alone (never from the device), so results are reproducible.
int64_t rows_per_chunk(int64_t rows, int64_t d) {
  constexpr int64_t kTargetBlocks = 2048, kMaxChunks = 1024;
  const int64_t tiles = (d + kTileColumns - 1) / kTileColumns;
  const int64_t chunks = std::clamp<int64_t>((kTargetBlocks + tiles - 1) / tiles, 1, kMaxChunks);
  return std::max<int64_t>(1, (rows + chunks - 1) / chunks);
}

template <class T>
void parameter_grads(const NormBackward& a, int64_t rows, int64_t d) {
  if (d == 0) return;
  const int64_t chunk = rows_per_chunk(rows, d), chunks = std::max<int64_t>(1, (rows + chunk - 1) / chunk);
  const TensorOptions f32{DType::f32, a.x.device()};
  Tensor weight_partial = a.grad_weight.defined() ? Tensor::empty({chunks, d}, f32) : Tensor();
  Tensor bias_partial = a.grad_bias.defined() ? Tensor::empty({chunks, d}, f32) : Tensor();
  cudaStream_t stream = stream_of(a.x);
  PartialArgs<T> args{rows,
                      d,
                      chunk,
                      a.x.data<T>(),
                      a.grad.data<T>(),
                      data_or_null<float>(a.mean),
                      a.rstd.data<float>(),
                      data_or_null<float>(weight_partial),
                      data_or_null<float>(bias_partial)};
  const dim3 grid(static_cast<unsigned>((d + kTileColumns - 1) / kTileColumns), static_cast<unsigned>(chunks));
  column_partials_kernel<T><<<grid, dim3(kTileColumns, kTileRows), 0, stream>>>(args);
  check_launch(a.op);
  auto sum_chunks = [&](const Tensor& partial, const Tensor& out) {
    if (!out.defined()) return;
    sum_chunks_kernel<T><<<grid_for(d), kThreads, 0, stream>>>(chunks, d, partial.data<float>(), out.data<T>());
    check_launch(a.op);
  };
  sum_chunks(weight_partial, a.grad_weight);
  sum_chunks(bias_partial, a.grad_bias);
}

}  // namespace

void norm_forward(const NormForward& a) {
  const int64_t d = a.x.shape().back(), rows = a.rstd.numel();
  if (rows == 0) return;
  visit_f32_bf16(a.x.dtype(), a.op, [&](auto tag) {
    using T = decltype(tag);
    constexpr int V = kPack<T>;
    const bool packed = packable(d, V, {&a.x, &a.y, &a.residual, &a.sum, &a.weight, &a.bias});
    const RowGroups g = row_groups(rows, packed ? d / V : d);
    ForwardArgs<T> args{rows,
                        d,
                        g.group,
                        a.x.data<T>(),
                        data_or_null<T>(a.residual),
                        data_or_null<T>(a.sum),
                        data_or_null<T>(a.weight),
                        data_or_null<T>(a.bias),
                        a.y.data<T>(),
                        data_or_null<float>(a.mean),
                        a.rstd.data<float>(),
                        static_cast<float>(a.eps)};
    cudaStream_t stream = stream_of(a.x);
    if (packed) {
      forward_kernel<T, V><<<g.blocks, g.threads, 0, stream>>>(args);
    } else {
      forward_kernel<T, 1><<<g.blocks, g.threads, 0, stream>>>(args);
    }
  });
  check_launch(a.op);
}

void norm_backward(const NormBackward& a) {
  const int64_t d = a.x.shape().back(), rows = a.rstd.numel();
  visit_f32_bf16(a.x.dtype(), a.op, [&](auto tag) {
    using T = decltype(tag);
    constexpr int V = kPack<T>;
    if (a.grad_x.defined() && rows > 0) {
      const bool packed = packable(d, V, {&a.x, &a.weight, &a.grad, &a.grad_extra, &a.grad_x});
      const RowGroups g = row_groups(rows, packed ? d / V : d);
      InputGradArgs<T> args{rows,
                            d,
                            g.group,
                            a.x.data<T>(),
                            data_or_null<T>(a.weight),
                            data_or_null<float>(a.mean),
                            a.rstd.data<float>(),
                            a.grad.data<T>(),
                            data_or_null<T>(a.grad_extra),
                            a.grad_x.data<T>()};
      cudaStream_t stream = stream_of(a.x);
      if (packed) {
        input_grad_kernel<T, V><<<g.blocks, g.threads, 0, stream>>>(args);
      } else {
        input_grad_kernel<T, 1><<<g.blocks, g.threads, 0, stream>>>(args);
      }
      check_launch(a.op);
    }
    if (a.grad_weight.defined() || a.grad_bias.defined()) parameter_grads<T>(a, rows, d);
  });
}

}  // namespace ponder::kernels

namespace ponder::backend::cuda {

void rms_norm_forward(const Tensor& y, const Tensor& rstd, const Tensor& x, const Tensor& weight, double eps) {
  kernels::norm_forward({"rms_norm", y, Tensor(), rstd, x, Tensor(), Tensor(), weight, Tensor(), eps});
}

void rms_norm_backward(const Tensor& grad_x, const Tensor& grad_weight, const Tensor& grad, const Tensor& x,
                       const Tensor& weight, const Tensor& rstd) {
  kernels::norm_backward({"rms_norm", grad_x, grad_weight, Tensor(), grad, Tensor(), x, weight, Tensor(), rstd});
}

void layer_norm_forward(const Tensor& y, const Tensor& mean, const Tensor& rstd, const Tensor& x, const Tensor& weight,
                        const Tensor& bias, double eps) {
  kernels::norm_forward({"layer_norm", y, mean, rstd, x, Tensor(), Tensor(), weight, bias, eps});
}

void layer_norm_backward(const Tensor& grad_x, const Tensor& grad_weight, const Tensor& grad_bias, const Tensor& grad,
                         const Tensor& x, const Tensor& weight, const Tensor& mean, const Tensor& rstd) {
  kernels::norm_backward({"layer_norm", grad_x, grad_weight, grad_bias, grad, Tensor(), x, weight, mean, rstd});
}

}  // namespace ponder::backend::cuda
