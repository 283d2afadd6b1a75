// CUDA attention over packed samples: the bf16 flash kernels of attention_flash.cuh for head_dim 64
// and 128 (single-pass backward with an f32 dQ sum, or two kernels in deterministic mode), the
// Hopper wgmma forward and single-pass backward of attention_wgmma.cuh (TMA-fed) for head_dim 128 on sm_90a, and
// simple warp-per-row kernels with f64 accumulation for f32 (the reference-accuracy path the tests
// use). Masks, sample lookup and parameters: attention_common.cuh.
#include "backend/cuda/attention.h"
#include "backend/determinism.h"
#include "backend/kernels.h"
#include "kernels/attention_flash.cuh"
#include "kernels/attention_wgmma.cuh"
#include "kernels/common.cuh"

#include <cudaTypedefs.h>

namespace ponder::backend::cuda {
namespace {
using namespace kernels::attention;
using kernels::check_launch;
using kernels::stream_of;

// ---- simple f32 kernels: one warp per row of one head, f64 accumulation ----

constexpr int kSimpleMaxDim = 256;
constexpr int kPerLane = kSimpleMaxDim / 32;

__device__ __forceinline__ double warp_sum(double x) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) x += __shfl_xor_sync(0xffffffffu, x, offset);
  return x;
}

// One row of `dim` values spread over a warp: lane holds elements lane + 32 c.
struct LaneRow {
  double x[kPerLane];

  __device__ void zero() {
#pragma unroll
    for (int c = 0; c < kPerLane; ++c) x[c] = 0.0;
  }
  __device__ void load(const float* row, int dim) {
#pragma unroll
    for (int c = 0; c < kPerLane; ++c) {
      const int d = threadIdx.x % 32 + 32 * c;
      x[c] = d < dim ? double(row[d]) : 0.0;
    }
  }
  // The full dot product with `row`, on every lane.
  __device__ double dot(const float* row, int dim) const {
    double sum = 0.0;
#pragma unroll
    for (int c = 0; c < kPerLane; ++c) {
      const int d = threadIdx.x % 32 + 32 * c;
      if (d < dim) sum += x[c] * double(row[d]);
    }
    return warp_sum(sum);
  }
  // x = x * keep + weight * row
  __device__ void blend(double keep, double weight, const float* row, int dim) {
#pragma unroll
    for (int c = 0; c < kPerLane; ++c) {
      const int d = threadIdx.x % 32 + 32 * c;
      if (d < dim) x[c] = x[c] * keep + weight * double(row[d]);
    }
  }
  __device__ void store(float* row, int dim, double factor) const {
#pragma unroll
    for (int c = 0; c < kPerLane; ++c) {
      const int d = threadIdx.x % 32 + 32 * c;
      if (d < dim) row[d] = float(x[c] * factor);
    }
  }
};

__device__ __forceinline__ int64_t warp_index() { return (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) / 32; }

// out and lse of query row (token, head): an online softmax over the keys it sees.
__global__ void simple_forward(ForwardParams p) {
  const int64_t row = warp_index();  // token * q_heads + head
  if (row >= p.tokens * p.q_heads) return;
  const int64_t token = row / p.q_heads;
  const int head = static_cast<int>(row % p.q_heads), kv_head = head / p.group;
  const SampleBlock b = locate_token(p, token);
  if (!b.active) return;
  const auto* k = static_cast<const float*>(p.k);
  const auto* v = static_cast<const float*>(p.v);
  LaneRow q, acc;
  q.load(static_cast<const float*>(p.q) + row * p.dim, p.dim);
  acc.zero();
  double max = -INFINITY, sum = 0.0;
  const int keys = visible_keys(p.mask, b.start, b.len, b.prefix);
  for (int j = 0; j < keys; ++j) {
    const int64_t at = ((b.begin + j) * p.kv_heads + kv_head) * p.dim;
    const double score = p.scale * q.dot(k + at, p.dim);
    const double new_max = fmax(max, score), rescale = exp(max - new_max), weight = exp(score - new_max);
    sum = sum * rescale + weight;
    acc.blend(rescale, weight, v + at, p.dim);
    max = new_max;
  }
  acc.store(static_cast<float*>(p.out) + row * p.dim, p.dim, 1.0 / sum);
  if (threadIdx.x % 32 == 0) p.lse[head * p.tokens + token] = float(max + log(sum));
}

// dq of query row (token, head).
__global__ void simple_backward_dq(BackwardParams p) {
  const int64_t row = warp_index();
  if (row >= p.tokens * p.q_heads) return;
  const int64_t token = row / p.q_heads;
  const int head = static_cast<int>(row % p.q_heads), kv_head = head / p.group;
  const SampleBlock b = locate_token(p, token);
  if (!b.active) return;
  const auto* k = static_cast<const float*>(p.k);
  const auto* v = static_cast<const float*>(p.v);
  LaneRow q, grad_out, dq;
  q.load(static_cast<const float*>(p.q) + row * p.dim, p.dim);
  grad_out.load(static_cast<const float*>(p.grad_out) + row * p.dim, p.dim);
  dq.zero();
  const double lse = p.lse[head * p.tokens + token], delta = p.delta[head * p.tokens + token];
  const int keys = visible_keys(p.mask, b.start, b.len, b.prefix);
  for (int j = 0; j < keys; ++j) {
    const int64_t at = ((b.begin + j) * p.kv_heads + kv_head) * p.dim;
    const double prob = exp(p.scale * q.dot(k + at, p.dim) - lse);
    const double ds = prob * (grad_out.dot(v + at, p.dim) - delta);
    dq.blend(1.0, ds, k + at, p.dim);
  }
  dq.store(static_cast<float*>(p.dq) + row * p.dim, p.dim, p.scale);
}

// dk and dv of key row (token, kv head): every query of the group's heads that sees it.
__global__ void simple_backward_dkdv(BackwardParams p) {
  const int64_t row = warp_index();  // token * kv_heads + kv_head
  if (row >= p.tokens * p.kv_heads) return;
  const int64_t token = row / p.kv_heads;
  const int kv_head = static_cast<int>(row % p.kv_heads);
  const SampleBlock b = locate_token(p, token);
  if (!b.active) return;
  const auto* q = static_cast<const float*>(p.q);
  const auto* grad_out = static_cast<const float*>(p.grad_out);
  LaneRow k, v, dk, dv;
  k.load(static_cast<const float*>(p.k) + row * p.dim, p.dim);
  v.load(static_cast<const float*>(p.v) + row * p.dim, p.dim);
  dk.zero();
  dv.zero();
  for (int head = kv_head * p.group; head < (kv_head + 1) * p.group; ++head) {
    for (int i = first_query(p.mask, b.start, b.prefix); i < b.len; ++i) {
      const int64_t at = ((b.begin + i) * p.q_heads + head) * p.dim, stat = head * p.tokens + b.begin + i;
      const double prob = exp(p.scale * k.dot(q + at, p.dim) - double(p.lse[stat]));
      const double ds = prob * (v.dot(grad_out + at, p.dim) - double(p.delta[stat]));
      dv.blend(1.0, prob, grad_out + at, p.dim);
      dk.blend(1.0, ds, q + at, p.dim);
    }
  }
  dk.store(static_cast<float*>(p.dk) + row * p.dim, p.dim, p.scale);
  dv.store(static_cast<float*>(p.dv) + row * p.dim, p.dim, 1.0);
}

// delta[head, token] = sum_d grad_out * out (the D_i of the backward), one warp per row, in acc_t<T>.
template <class T>
__global__ void row_dot(float* delta, const T* grad_out, const T* out, int64_t tokens, int heads, int dim) {
  using A = acc_t<T>;
  const int64_t row = warp_index();
  if (row >= tokens * heads) return;
  A sum = 0;
  for (int d = threadIdx.x % 32; d < dim; d += 32) {
    sum += A(compute_t<T>(grad_out[row * dim + d])) * A(compute_t<T>(out[row * dim + d]));
  }
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
  if (threadIdx.x % 32 == 0) delta[(row % heads) * tokens + row / heads] = float(sum);
}

// dq = scale * dq_sum as bf16 (the last step of the single-pass backward), 4 elements at a time.
__global__ void finish_dq(uint2* dq, const float4* dq_sum, float scale, int64_t quads) {
  using kernels::mma::pack_bf16;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < quads; i += int64_t(gridDim.x) * blockDim.x) {
    const float4 x = dq_sum[i];
    dq[i] = make_uint2(pack_bf16(x.x * scale, x.y * scale), pack_bf16(x.z * scale, x.w * scale));
  }
}

// ---- launching ----

// On an H100 (sm_90a build) the head_dim 128 forward is the wgmma kernel of attention_wgmma.cuh:
// two warpgroups of 64 queries, key tiles of 128, three buffers deep — measured (tools/bench_attention,
// PrefixLM, 1 / 2 / 4 x 4096): 268 / 301 / 294 TFLOP/s, against 244 / 278 / 273 with key tiles of
// 64, 196 / 211 / 196 with one warpgroup and tiles of 128, 249 / 277 / 269 with one and 64, and
// 262 / 298 / 290 two buffers deep. A warp-specialised variant (a producer warpgroup copying with
// cp.async and signalling mbarriers, two consumer warpgroups with 224 registers taking turns on
// named barriers) passed the tests but ran 12% slower: PrefixLM 1 / 2 x 4096 and one 16384-token
// bidirectional row, H100 238.8 / 267.8 / 336.5 against 271.2 / 300.8 / 386.5; H200 236.7 / 265.7
// / 331.6, and 230.7 / 259.0 / 324.6 without the turns, against 270.1 / 301.7 / 385.9 (2026-12-06,
// each GPU one run). Its single-pass backward (128 keys per CTA, query tiles of 64):
// 181.8 / 203.4 TFLOP/s at 1 / 2 x 4096 against 168.9 for the mma.sync one at 2 x 4096; issuing a
// tile's dQ atomics under the next tile's S^T product took it from 184.6 / 207.4 to 194.2 / 218.6
// (H200, same run). The atomics still cost about a quarter (274.5 at 2 x 4096 without them, timing
// only); a bulk reduction (cp.reduce.async.bulk) or red.global.add.v4 measured no faster than
// red.global.add.v2. Deterministic mode keeps the two mma.sync kernels.
//
// Kernel shapes per head_dim (Geometry<D, warps, m-tiles per warp, tile>). Forward: 4 warps of 16
// queries (64 per CTA), key tiles of 64 — measured on an H100 at head_dim 128 (tools/bench_attention,
// PrefixLM 2 x 4096): 235.6 TFLOP/s, against 210.0 with two m-tiles per warp (255 registers and
// spills) and 216.9 with two m-tiles and key tiles of 32. Backward: 4 warps of 16 queries (dQ) or
// 16 keys (dK/dV), the other operand in tiles of 64.
template <int D>
struct Flash {
  using Forward = Geometry<D, 4, 1, 64>;
  using Dq = Geometry<D, 4, 1, 64>;
  using Dkdv = Geometry<D, 4, 1, 64>;
};

Params params_of(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& cu_seqlens,
                 const Tensor& prefix_len, AttentionMask mask, double scale) {
  Params p{};
  p.q = q.data_ptr();
  p.k = k.data_ptr();
  p.v = v.data_ptr();
  p.cu_seqlens = cu_seqlens.data<int32_t>();
  p.prefix_len = mask == AttentionMask::prefix_lm ? prefix_len.data<int32_t>() : nullptr;
  p.mask = mask;
  p.tokens = q.size(0);
  p.samples = static_cast<int>(cu_seqlens.size(0) - 1);
  p.q_heads = static_cast<int>(q.size(1));
  p.kv_heads = static_cast<int>(k.size(1));
  p.dim = static_cast<int>(q.size(2));
  p.group = p.q_heads / p.kv_heads;
  p.scale = static_cast<float>(scale);
  return p;
}

// Refuses what no kernel here handles, before anything is launched.
void check_supported(const Tensor& q, const char* op) {
  const int64_t dim = q.size(2);
  PONDER_CHECK(q.dtype() != DType::f64, DTypeError, op, ": f64 has no CUDA kernel, use f32 or bf16 (q ",
               describe(q), ")");
  PONDER_CHECK(q.dtype() != DType::bf16 || dim == 64 || dim == 128, ShapeError, op,
               ": the CUDA bf16 kernels support head_dim 64 and 128, got q ", describe(q));
  PONDER_CHECK(q.dtype() != DType::f32 || dim <= kSimpleMaxDim, ShapeError, op,
               ": the CUDA f32 kernels support head_dim up to ", kSimpleMaxDim, ", got q ", describe(q));
  PONDER_CHECK(q.size(0) <= INT32_MAX, ShapeError, op, ": q ", describe(q),
               " has more tokens than i32 cu_seqlens can address");
}

// The flash kernels copy 16-byte pieces: an input view that is not 16-byte aligned is copied (the
// simple kernels would not need it, but such views are rare).
Tensor aligned(const Tensor& t) {
  if (reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0) return t;
  Tensor copy = Tensor::empty(t.shape(), t.options());
  backend::copy(copy, t);
  return copy;
}

void check_aligned(const Tensor& t, const char* op) {
  PONDER_CHECK(reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0, ValueError, op, ": output ", describe(t),
               " is not 16-byte aligned");
}

// Warp-per-row kernels run 8 warps per block.
constexpr int kWarpsPerBlock = 8;

unsigned blocks_for_rows(int64_t rows) { return static_cast<unsigned>((rows + kWarpsPerBlock - 1) / kWarpsPerBlock); }

template <class P>
void launch_rows(void (*kernel)(P), const P& p, int64_t rows, const Tensor& like, const char* name) {
  kernel<<<blocks_for_rows(rows), 32 * kWarpsPerBlock, 0, stream_of(like)>>>(p);
  check_launch(name);
}

template <class T>
void launch_row_dot(const Tensor& delta, const Tensor& grad_out, const Tensor& out) {
  row_dot<T><<<blocks_for_rows(out.size(0) * out.size(1)), 32 * kWarpsPerBlock, 0, stream_of(out)>>>(
      delta.data<float>(), grad_out.data<T>(), out.data<T>(), out.size(0), static_cast<int>(out.size(1)),
      static_cast<int>(out.size(2)));
  check_launch("attention_backward (row_dot)");
}

// One CTA per (block slot, head); `shared` bytes of dynamic shared memory.
template <class P>
void launch_blocks(void (*kernel)(P), const P& p, int rows_per_block, int heads, int threads, int shared,
                   const Tensor& like, const char* name) {
  const int64_t ctas = block_slots(p.tokens, p.samples, rows_per_block) * heads;
  PONDER_CHECK(ctas <= INT32_MAX, ShapeError, name, ": ", p.tokens, " tokens x ", heads, " heads need too many blocks");
  if (shared > 48 * 1024) {
    ponder::cuda::check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, shared), name);
    // Two CTAs of about 100 KiB per SM need the largest shared-memory carveout.
    ponder::cuda::check(cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                                             cudaSharedmemCarveoutMaxShared),
                        name);
  }
  kernel<<<static_cast<unsigned>(ctas), threads, shared, stream_of(like)>>>(p);
  check_launch(name);
}

// The wgmma forward exists when the build includes sm_90a code and runs on a compute 9.0 device.
bool hopper_kernels(const Tensor& like) {
#ifdef PONDER_CUDA_SM90A
  int major = 0, minor = 0;
  const int device = like.device().index;
  ponder::cuda::check(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device), "attention");
  ponder::cuda::check(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device), "attention");
  return major == 9 && minor == 0;
#else
  (void)like;
  return false;
#endif
}

// cuTensorMapEncodeTiled from the driver, found once through the runtime (no link against libcuda).
PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder() {
  static const PFN_cuTensorMapEncodeTiled_v12000 encode = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found{};
    ponder::cuda::check(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &found),
                        "attention (cuTensorMapEncodeTiled lookup)");
    PONDER_CHECK(found == cudaDriverEntryPointSuccess && fn, DeviceError,
                 "attention: the CUDA driver has no cuTensorMapEncodeTiled");
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn);
  }();
  return encode;
}

// The TMA map of a [tokens, heads, 128] bf16 tensor in boxes of `rows` tokens (see ForwardMaps).
CUtensorMap head_rows_map(const Tensor& x, int rows, const char* op) {
  const cuuint64_t dims[3] = {cuuint64_t(x.size(2)), cuuint64_t(x.size(1)), cuuint64_t(x.size(0))};
  const cuuint64_t strides[2] = {cuuint64_t(x.size(2) * 2), cuuint64_t(x.size(1) * x.size(2) * 2)};
  const cuuint32_t box[3] = {cuuint32_t(kernels::wgmma::kPanel), 1, cuuint32_t(rows)};
  const cuuint32_t steps[3] = {1, 1, 1};
  CUtensorMap map;
  const CUresult status = tensor_map_encoder()(
      &map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 3, x.data_ptr(), dims, strides, box, steps, CU_TENSOR_MAP_INTERLEAVE_NONE,
      CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  PONDER_CHECK(status == CUDA_SUCCESS, DeviceError, op, ": cuTensorMapEncodeTiled failed (error ",
               int(status), ") for ", describe(x));
  return map;
}

void hopper_forward_launch(const ForwardParams& p, const Tensor& q, const Tensor& k, const Tensor& v) {
  using G = HopperForward;
  const char* op = "attention_forward";
  const ForwardMaps maps{head_rows_map(q, G::kBlock, op), head_rows_map(k, G::kTile, op),
                         head_rows_map(v, G::kTile, op)};
  const int64_t ctas = block_slots(p.tokens, p.samples, G::kBlock) * p.q_heads;
  PONDER_CHECK(ctas <= INT32_MAX, ShapeError, "attention_forward: ", p.tokens, " tokens x ", p.q_heads,
               " heads need too many blocks");
  auto kernel = hopper_forward<G>;
  ponder::cuda::check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, G::kSharedBytes),
                      "attention_forward");
  kernel<<<static_cast<unsigned>(ctas), G::kThreads, G::kSharedBytes, stream_of(q)>>>(p, maps);
  check_launch("attention_forward");
}

template <int D>
void flash_forward_launch(const ForwardParams& p, const Tensor& q, const Tensor& k, const Tensor& v) {
  if (D == 128 && hopper_kernels(q)) return hopper_forward_launch(p, q, k, v);
  using G = typename Flash<D>::Forward;
  launch_blocks(flash_forward<G>, p, G::kBlock, p.q_heads, G::kThreads, forward_shared_bytes<G>(), q,
                "attention_forward");
}

void hopper_backward_launch(const BackwardParams& p, const Tensor& q, const Tensor& k, const Tensor& v,
                            const Tensor& grad_out) {
  using H = HopperBackward;
  const char* op = "attention_backward";
  const BackwardMaps maps{head_rows_map(q, H::kTile, op), head_rows_map(grad_out, H::kTile, op),
                          head_rows_map(k, H::kBlock, op), head_rows_map(v, H::kBlock, op)};
  const int64_t ctas = block_slots(p.tokens, p.samples, H::kBlock) * p.kv_heads;
  PONDER_CHECK(ctas <= INT32_MAX, ShapeError, "attention_backward: ", p.tokens, " tokens x ", p.kv_heads,
               " heads need too many blocks");
  ponder::cuda::check(cudaFuncSetAttribute(hopper_backward, cudaFuncAttributeMaxDynamicSharedMemorySize, H::kSharedBytes),
                      "attention_backward");
  hopper_backward<<<static_cast<unsigned>(ctas), H::kThreads, H::kSharedBytes, stream_of(q)>>>(p, maps);
  check_launch("attention_backward (dk, dv, dq)");
}

// Single pass when p.dq_sum is set (dq is then finished by finish_dq), else the dQ kernel and the
// dK/dV kernel.
template <int D>
void flash_backward_launch(const BackwardParams& p, const Tensor& q, const Tensor& k, const Tensor& v,
                           const Tensor& grad_out) {
  using Gq = typename Flash<D>::Dq;
  using Gkv = typename Flash<D>::Dkdv;
  if (p.dq_sum && D == 128 && hopper_kernels(q)) return hopper_backward_launch(p, q, k, v, grad_out);
  if (p.dq_sum) {
    launch_blocks(flash_backward_dkdv<Gkv, true>, p, Gkv::kBlock, p.kv_heads, Gkv::kThreads,
                  dkdv_shared_bytes<Gkv, true>(), q, "attention_backward (dk, dv, dq)");
    return;
  }
  launch_blocks(flash_backward_dq<Gq>, p, Gq::kBlock, p.q_heads, Gq::kThreads, dq_shared_bytes<Gq>(), q,
                "attention_backward (dq)");
  launch_blocks(flash_backward_dkdv<Gkv, false>, p, Gkv::kBlock, p.kv_heads, Gkv::kThreads,
                dkdv_shared_bytes<Gkv, false>(), q, "attention_backward (dk, dv)");
}

// The zeroed f32 dQ sum of the single-pass backward (bf16 outside deterministic mode), else undefined.
Tensor dq_sum_for(const Tensor& q) {
  if (q.dtype() != DType::bf16 || backend::deterministic()) return {};
  Tensor sum = Tensor::empty(q.shape(), {DType::f32, q.device()});
  ponder::cuda::check(cudaMemsetAsync(sum.data_ptr(), 0, sum.numel() * sizeof(float), stream_of(q)),
                      "attention_backward (zeroing the dq sum)");
  return sum;
}

void launch_finish_dq(const Tensor& dq, const Tensor& dq_sum, double scale) {
  const int64_t quads = dq.numel() / 4;  // head_dim is 64 or 128
  finish_dq<<<kernels::grid_for(quads), kernels::kThreads, 0, stream_of(dq)>>>(
      static_cast<uint2*>(dq.data_ptr()), static_cast<const float4*>(dq_sum.data_ptr()), static_cast<float>(scale),
      quads);
  check_launch("attention_backward (finish dq)");
}

}  // namespace

void attention_forward(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k,
                       const Tensor& v, const AttentionSpec& spec, double scale) {
  check_supported(q, "attention_forward");
  if (q.size(0) == 0 || spec.cu_seqlens.size(0) < 2) return;
  const Tensor cu = backend::contiguous(spec.cu_seqlens);
  const Tensor prefix = spec.prefix_len.defined() ? backend::contiguous(spec.prefix_len) : Tensor();
  const bool simple = q.dtype() == DType::f32;
  check_aligned(out, "attention_forward");
  const Tensor qa = aligned(q), ka = aligned(k), va = aligned(v);
  const ForwardParams p{params_of(qa, ka, va, cu, prefix, spec.mask, scale), out.data_ptr(), lse.data<float>()};
  if (simple) launch_rows(simple_forward, p, p.tokens * p.q_heads, q, "attention_forward");
  else if (p.dim == 64) flash_forward_launch<64>(p, qa, ka, va);
  else flash_forward_launch<128>(p, qa, ka, va);
}

void attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& grad_out,
                        const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                        const Tensor& lse, const AttentionSpec& spec, double scale) {
  check_supported(q, "attention_backward");
  if (q.size(0) == 0 || spec.cu_seqlens.size(0) < 2) return;
  const Tensor cu = backend::contiguous(spec.cu_seqlens);
  const Tensor prefix = spec.prefix_len.defined() ? backend::contiguous(spec.prefix_len) : Tensor();
  const bool simple = q.dtype() == DType::f32;
  for (const Tensor* t : {&dq, &dk, &dv}) check_aligned(*t, "attention_backward");
  const Tensor qa = aligned(q), ka = aligned(k), va = aligned(v), go = aligned(grad_out);
  const Tensor delta = Tensor::empty({q.size(1), q.size(0)}, {DType::f32, q.device()});
  if (simple) launch_row_dot<float>(delta, grad_out, out);
  else launch_row_dot<bf16>(delta, grad_out, out);

  const Tensor dq_sum = dq_sum_for(q);
  const BackwardParams p{params_of(qa, ka, va, cu, prefix, spec.mask, scale),
                         go.data_ptr(),
                         lse.data<float>(),
                         delta.data<float>(),
                         dq.data_ptr(),
                         dk.data_ptr(),
                         dv.data_ptr(),
                         dq_sum.defined() ? dq_sum.data<float>() : nullptr};
  if (simple) {
    launch_rows(simple_backward_dq, p, p.tokens * p.q_heads, q, "attention_backward (dq)");
    launch_rows(simple_backward_dkdv, p, p.tokens * p.kv_heads, q, "attention_backward (dk, dv)");
  } else if (p.dim == 64) {
    flash_backward_launch<64>(p, qa, ka, va, go);
  } else {
    flash_backward_launch<128>(p, qa, ka, va, go);
  }
  if (dq_sum.defined()) launch_finish_dq(dq, dq_sum, scale);
}

}  // namespace ponder::backend::cuda
