// Matrix products on the GPU through cuBLASLt. ponder's matrices are row-major and cuBLASLt's are
// column-major; a row-major X read as column-major is X^T, so C = A B is computed as
// C^T = B^T A^T with no copies, and a transposed view (stride 1 down its rows) becomes
// cuBLASLt's transpose flag instead.
#include "backend/cuda/matmul.h"

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <array>
#include <atomic>
#include <algorithm>
#include <climits>
#include <limits>
#include <compare>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "backend/cuda/elementwise.h"
#include "backend/cuda/pointer_array.h"
#include "backend/determinism.h"
#include "backend/kernels.h"
#include "tensor/cuda_context.h"
#include "tensor/error.h"

namespace ponder::backend::cuda {
namespace {

constexpr uint64_t kWorkspaceBytes = 32u << 20;
constexpr int kMaxDevices = 64;
constexpr uint32_t kMaxAlignment = 256;  // the most any cuBLASLt kernel asks of a pointer

std::atomic<bool> tf32_allowed{false};

// ---- one cuBLASLt call, described in its own (column-major) terms ----

// A matrix as cuBLASLt reads it: stored column-major as rows x cols with leading dimension ld,
// used as is or transposed, the next batch item batch_stride elements further on (0: shared).
struct Operand {
  const void* data;
  bool transpose;
  int64_t rows, cols, ld, batch_stride;
};

// Pointer-array batch mode: A, B and D's data are device arrays of `batch` matrix pointers, and
// these are the alignments (as alignment() below) every matrix they point to has.
struct PointerAlignments {
  uint32_t a, b, d;
};

// D (m x n) = op(A) (m x k) * op(B) (k x n) [+ D], `batch` times. D is of A and B's dtype, or f32
// under bf16 operands (gradients summed into an fp32 buffer).
struct Gemm {
  DType dtype, d_dtype;
  int64_t m, n, k, batch;
  Operand a, b;
  void* d;
  int64_t ldd, d_batch_stride;
  cublasLtEpilogue_t epilogue;
  void* epilogue_vector;  // the bias (BIAS) or the bias gradient (BGRADB)
  bool accumulate;
  std::optional<PointerAlignments> pointer_array{};
};

std::string describe(const Gemm& g) {
  auto op = [](const Operand& x) { return x.transpose ? "T" : "N"; };
  std::ostringstream os;
  os << "cuBLASLt " << dtype_name(g.dtype) << "->" << dtype_name(g.d_dtype) << " m=" << g.m << " n=" << g.n
     << " k=" << g.k << " batch=" << g.batch
     << " op(A)=" << op(g.a) << " lda=" << g.a.ld << " strideA=" << g.a.batch_stride << " op(B)=" << op(g.b)
     << " ldb=" << g.b.ld << " strideB=" << g.b.batch_stride << " ldd=" << g.ldd
     << " epilogue=" << static_cast<int>(g.epilogue) << (g.accumulate ? " beta=1" : "")
     << (g.pointer_array ? " pointer-array" : "");
  return os.str();
}

void check(cublasStatus_t status, const char* call, const Gemm& g) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  fail<DeviceError>(call, " failed for ", describe(g), ": ", cublasLtGetStatusName(status), " (",
                    cublasLtGetStatusString(status), ")");
}

struct Types {
  cudaDataType_t data;
  cublasComputeType_t compute;
  cudaDataType_t scale;
};

Types types_for(DType t) {
  switch (t) {
    case DType::bf16: return {CUDA_R_16BF, CUBLAS_COMPUTE_32F, CUDA_R_32F};
    case DType::f32:
      return {CUDA_R_32F, tf32_allowed.load() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F, CUDA_R_32F};
    case DType::f64: return {CUDA_R_64F, CUBLAS_COMPUTE_64F, CUDA_R_64F};
    default: fail<DTypeError>("matmul: the GPU multiplies bf16, f32 and f64 matrices, not ", dtype_name(t));
  }
}

// ---- per-device state: handle, workspace, algorithm cache ----

struct DeviceState {
  cublasLtHandle_t handle = nullptr;
  Tensor* workspace = nullptr;
};

const DeviceState& device_state(int device) {
  static std::array<DeviceState, kMaxDevices> states;
  static std::array<std::once_flag, kMaxDevices> created;
  PONDER_CHECK(device >= 0 && device < kMaxDevices, DeviceError, "cuda:", device, " is out of range");
  std::call_once(created[device], [device] {
    // Never destroyed: at static destruction the CUDA runtime may already be gone.
    cublasStatus_t status = cublasLtCreate(&states[device].handle);
    PONDER_CHECK(status == CUBLAS_STATUS_SUCCESS, DeviceError, "cublasLtCreate failed on cuda:", device, ": ",
                 cublasLtGetStatusName(status), " (", cublasLtGetStatusString(status), ")");
    states[device].workspace = new Tensor(
        Tensor::empty({static_cast<int64_t>(kWorkspaceBytes)}, {DType::u8, Device::cuda(device)}));
  });
  return states[device];
}

// The largest power of two (up to kMaxAlignment) dividing every byte offset the kernel will form
// from this base: the address, the leading dimension and the batch stride.
uint32_t alignment(const void* data, int64_t ld, int64_t batch_stride, DType t) {
  uint64_t bits = reinterpret_cast<uintptr_t>(data) | kMaxAlignment;
  bits |= static_cast<uint64_t>(ld) * element_size(t);
  bits |= static_cast<uint64_t>(batch_stride) * element_size(t);
  return static_cast<uint32_t>(bits & (~bits + 1));
}

// Everything cuBLASLt's heuristic sees, including whether the product accumulates (beta = 1).
struct AlgoKey {
  int device, dtype, d_dtype, compute, epilogue;
  bool transpose_a, transpose_b, deterministic, accumulate, pointer_array;
  int64_t m, n, k, batch, lda, ldb, ldd, stride_a, stride_b, stride_d;
  uint32_t align_a, align_b, align_d, align_vector;
  auto operator<=>(const AlgoKey&) const = default;
};

AlgoKey key_of(const Gemm& g, int device, const Types& types) {
  auto align_vector = g.epilogue_vector ? alignment(g.epilogue_vector, 0, 0, g.dtype) : 0u;
  const PointerAlignments aligned = g.pointer_array.value_or(
      PointerAlignments{alignment(g.a.data, g.a.ld, g.a.batch_stride, g.dtype),
                        alignment(g.b.data, g.b.ld, g.b.batch_stride, g.dtype),
                        alignment(g.d, g.ldd, g.d_batch_stride, g.d_dtype)});
  return {device, static_cast<int>(g.dtype), static_cast<int>(g.d_dtype), static_cast<int>(types.compute),
          static_cast<int>(g.epilogue),
          g.a.transpose, g.b.transpose, deterministic(), g.accumulate, g.pointer_array.has_value(), g.m, g.n, g.k,
          g.batch, g.a.ld, g.b.ld, g.ldd, g.a.batch_stride, g.b.batch_stride, g.d_batch_stride,
          aligned.a, aligned.b, aligned.d, align_vector};
}

// ---- descriptors ----

template <class H, cublasStatus_t (*Destroy)(H)>
class Owned {
 public:
  Owned() = default;
  ~Owned() {
    if (handle_) Destroy(handle_);
  }
  Owned(const Owned&) = delete;
  Owned& operator=(const Owned&) = delete;
  H* out() { return &handle_; }
  H get() const { return handle_; }

 private:
  H handle_ = nullptr;
};
using MatmulDesc = Owned<cublasLtMatmulDesc_t, cublasLtMatmulDescDestroy>;
using LayoutDesc = Owned<cublasLtMatrixLayout_t, cublasLtMatrixLayoutDestroy>;
using PreferenceDesc = Owned<cublasLtMatmulPreference_t, cublasLtMatmulPreferenceDestroy>;

template <class V>
void set(const Gemm& g, cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr, V value) {
  check(cublasLtMatmulDescSetAttribute(desc, attr, &value, sizeof(value)), "cublasLtMatmulDescSetAttribute", g);
}
template <class V>
void set(const Gemm& g, cublasLtMatrixLayout_t desc, cublasLtMatrixLayoutAttribute_t attr, V value) {
  check(cublasLtMatrixLayoutSetAttribute(desc, attr, &value, sizeof(value)), "cublasLtMatrixLayoutSetAttribute", g);
}
template <class V>
void set(const Gemm& g, cublasLtMatmulPreference_t desc, cublasLtMatmulPreferenceAttributes_t attr, V value) {
  check(cublasLtMatmulPreferenceSetAttribute(desc, attr, &value, sizeof(value)),
        "cublasLtMatmulPreferenceSetAttribute", g);
}

void make_layout(LayoutDesc& layout, const Gemm& g, cudaDataType_t type, int64_t rows, int64_t cols, int64_t ld,
                 int64_t batch_stride) {
  check(cublasLtMatrixLayoutCreate(layout.out(), type, rows, cols, ld), "cublasLtMatrixLayoutCreate", g);
  if (g.pointer_array) {
    set(g, layout.get(), CUBLASLT_MATRIX_LAYOUT_BATCH_MODE, uint32_t{CUBLASLT_BATCH_MODE_POINTER_ARRAY});
    set(g, layout.get(), CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, static_cast<int32_t>(g.batch));
    return;
  }
  if (g.batch == 1) return;
  set(g, layout.get(), CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, static_cast<int32_t>(g.batch));
  set(g, layout.get(), CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, batch_stride);
}

constexpr int kCandidates = 8;  // heuristic answers timed per configuration
constexpr int kTimedRuns = 3;   // per candidate, after one untimed run

// Enqueues g with `algo` on ponder's compute stream, D and the epilogue's vector overwritten unless g accumulates.
cublasStatus_t launch(const Gemm& g, int device, cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t a,
                      cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t d, const cublasLtMatmulAlgo_t& algo) {
  const DeviceState& state = device_state(device);
  const float alpha_f = 1.0f, beta_f = g.accumulate ? 1.0f : 0.0f;
  const double alpha_d = 1.0, beta_d = g.accumulate ? 1.0 : 0.0;
  const bool wide = types_for(g.dtype).scale == CUDA_R_64F;
  const void* alpha = wide ? static_cast<const void*>(&alpha_d) : &alpha_f;
  const void* beta = wide ? static_cast<const void*>(&beta_d) : &beta_f;
  return cublasLtMatmul(state.handle, desc, alpha, g.a.data, a, g.b.data, b, beta, g.d, d, g.d, d, &algo,
                        state.workspace->data_ptr(), kWorkspaceBytes, ponder::cuda::compute_stream(device));
}

// Where timing runs may write g's D: D itself, which the caller's own run then overwrites again,
// or for an accumulating g (whose runs would each add to D) a zeroed scratch of D's extent.
Gemm timing_copy(const Gemm& g, int device, Tensor& scratch) {
  Gemm timed = g;
  if (!g.accumulate) return timed;
  const int64_t extent = (g.batch - 1) * g.d_batch_stride + (g.n - 1) * g.ldd + g.m;
  scratch = Tensor::empty({extent}, {g.d_dtype, Device::cuda(device)});
  fill(scratch, 0.0);
  timed.d = scratch.data_ptr();
  return timed;
}

// The fastest of the candidates by the shortest of kTimedRuns runs each (candidates that fail to
// launch are skipped).
cublasLtMatmulAlgo_t fastest(const Gemm& real, int device, cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t a,
                             cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t d,
                             const std::vector<cublasLtMatmulHeuristicResult_t>& candidates) {
  Tensor scratch;
  const Gemm g = timing_copy(real, device, scratch);
  const cudaStream_t stream = ponder::cuda::compute_stream(device);
  cudaEvent_t start, stop;
  ponder::cuda::check(cudaEventCreate(&start), "cudaEventCreate (GEMM tuning)");
  ponder::cuda::check(cudaEventCreate(&stop), "cudaEventCreate (GEMM tuning)");
  cublasLtMatmulAlgo_t best = candidates.front().algo;
  float best_ms = std::numeric_limits<float>::infinity();
  for (const auto& candidate : candidates) {
    if (launch(g, device, desc, a, b, d, candidate.algo) != CUBLAS_STATUS_SUCCESS) continue;
    float shortest = std::numeric_limits<float>::infinity();
    for (int run = 0; run < kTimedRuns; ++run) {
      ponder::cuda::check(cudaEventRecord(start, stream), "cudaEventRecord (GEMM tuning)");
      check(launch(g, device, desc, a, b, d, candidate.algo), "cublasLtMatmul (GEMM tuning)", g);
      ponder::cuda::check(cudaEventRecord(stop, stream), "cudaEventRecord (GEMM tuning)");
      ponder::cuda::check(cudaEventSynchronize(stop), "cudaEventSynchronize (GEMM tuning)");
      float ms = 0;
      ponder::cuda::check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime (GEMM tuning)");
      shortest = std::min(shortest, ms);
    }
    if (shortest < best_ms) {
      best_ms = shortest;
      best = candidate.algo;
    }
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return best;
}

// The algorithm for g: the fastest of the heuristic's first kCandidates answers, timed on g's own
// operands; the heuristic's first answer alone in deterministic mode (timing noise must not change
// the result between runs) and for pointer-array batches (timing an accumulating one would need
// scratch copies of every D). None when the heuristic has none.
std::optional<cublasLtMatmulAlgo_t> best_algorithm(const Gemm& g, int device, const AlgoKey& key,
                                                   cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t a,
                                                   cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t d) {
  PreferenceDesc pref;
  check(cublasLtMatmulPreferenceCreate(pref.out()), "cublasLtMatmulPreferenceCreate", g);
  set(g, pref.get(), CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, kWorkspaceBytes);
  set(g, pref.get(), CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, key.align_a);
  set(g, pref.get(), CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, key.align_b);
  set(g, pref.get(), CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, key.align_d);
  set(g, pref.get(), CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, key.align_d);
  if (key.deterministic) {
    set(g, pref.get(), CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, uint32_t{CUBLASLT_REDUCTION_SCHEME_NONE});
  } else if (g.dtype == DType::bf16) {
    // Split-K partial sums only in fp32: partials rounded to bf16 would undo the fp32 accumulation.
    set(g, pref.get(), CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, uint32_t{CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE});
  }
  const bool tune = !key.deterministic && !key.pointer_array;
  std::vector<cublasLtMatmulHeuristicResult_t> results(tune ? kCandidates : 1);
  int found = 0;
  const DeviceState& state = device_state(device);
  cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(state.handle, desc, a, b, d, d, pref.get(),
                                                         static_cast<int>(results.size()), results.data(), &found);
  // An epilogue cuBLASLt rejects for these types or operands is answered by the unfused fallback.
  const bool fused = g.epilogue != CUBLASLT_EPILOGUE_DEFAULT;
  if ((status != CUBLAS_STATUS_SUCCESS && fused) || status == CUBLAS_STATUS_NOT_SUPPORTED) return std::nullopt;
  check(status, "cublasLtMatmulAlgoGetHeuristic", g);
  if (found == 0) return std::nullopt;
  results.resize(found);
  if (found == 1) return results.front().algo;
  return fastest(g, device, desc, a, b, d, results);
}

// best_algorithm, asked once per configuration; misses are kept too, so a fallback is decided once.
std::optional<cublasLtMatmulAlgo_t> cached_algorithm(const Gemm& g, int device, const AlgoKey& key,
                                                     cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t a,
                                                     cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t d) {
  static std::mutex mutex;
  static std::map<AlgoKey, std::optional<cublasLtMatmulAlgo_t>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(key);
  if (it == cache.end()) it = cache.emplace(key, best_algorithm(g, device, key, desc, a, b, d)).first;
  return it->second;
}

// Enqueues g on ponder's compute stream. False when cuBLASLt has no algorithm for g's epilogue
// (nothing was enqueued); a plain product always has one.
bool run(const Gemm& g, int device) {
  PONDER_CHECK(g.batch <= INT32_MAX, ValueError, "matmul: ", g.batch, " batch items exceed cuBLASLt's limit");
  ponder::cuda::DeviceGuard guard(device);
  const Types types = types_for(g.dtype);
  MatmulDesc desc;
  check(cublasLtMatmulDescCreate(desc.out(), types.compute, types.scale), "cublasLtMatmulDescCreate", g);
  set(g, desc.get(), CUBLASLT_MATMUL_DESC_TRANSA, g.a.transpose ? CUBLAS_OP_T : CUBLAS_OP_N);
  set(g, desc.get(), CUBLASLT_MATMUL_DESC_TRANSB, g.b.transpose ? CUBLAS_OP_T : CUBLAS_OP_N);
  if (g.epilogue != CUBLASLT_EPILOGUE_DEFAULT) {
    set(g, desc.get(), CUBLASLT_MATMUL_DESC_EPILOGUE, g.epilogue);
    set(g, desc.get(), CUBLASLT_MATMUL_DESC_BIAS_POINTER, g.epilogue_vector);
  }
  LayoutDesc a, b, d;
  make_layout(a, g, types.data, g.a.rows, g.a.cols, g.a.ld, g.a.batch_stride);
  make_layout(b, g, types.data, g.b.rows, g.b.cols, g.b.ld, g.b.batch_stride);
  make_layout(d, g, types_for(g.d_dtype).data, g.m, g.n, g.ldd, g.d_batch_stride);
  const AlgoKey key = key_of(g, device, types);
  auto algo = cached_algorithm(g, device, key, desc.get(), a.get(), b.get(), d.get());
  if (!algo) {
    if (g.epilogue != CUBLASLT_EPILOGUE_DEFAULT) return false;
    fail<DeviceError>("cublasLtMatmulAlgoGetHeuristic found no algorithm for ", describe(g));
  }
  check(launch(g, device, desc.get(), a.get(), b.get(), d.get(), *algo), "cublasLtMatmul", g);
  return true;
}

// ---- ponder operands to cuBLASLt operands ----

// How a [rows, cols] matrix lies in memory when cuBLASLt can read it in place: rows contiguous
// (ld = the row stride) or columns contiguous (a transposed view; ld = the column stride). A single
// row or column has no stride to honour across it, so its ld only has to be legal.
struct MatrixLayout {
  bool column_major;
  int64_t ld;
};

std::optional<MatrixLayout> matrix_layout(int64_t rows, int64_t cols, int64_t row_stride, int64_t col_stride) {
  if ((col_stride == 1 || cols == 1) && (rows == 1 || row_stride >= cols)) {
    return MatrixLayout{false, rows == 1 ? cols : row_stride};
  }
  if ((row_stride == 1 || rows == 1) && (cols == 1 || col_stride >= rows)) {
    return MatrixLayout{true, cols == 1 ? rows : col_stride};
  }
  return std::nullopt;
}

// The one stride that steps through all batch items of t (dims before the last two) in row-major
// order, 0 when they are all broadcast; none when the batch dims do not collapse to one.
std::optional<int64_t> uniform_batch_stride(const Tensor& t) {
  std::optional<int64_t> stride;
  int64_t outer = 0;  // the stride the next outer dim must have to continue the sequence
  for (int d = t.dim() - 3; d >= 0; --d) {
    if (t.size(d) == 1) continue;
    if (stride && t.stride(d) != outer) return std::nullopt;
    if (!stride) stride = t.stride(d);
    outer = t.stride(d) * t.size(d);
  }
  return stride.value_or(0);
}

// A ponder operand ready for cuBLASLt; `data` keeps a packed copy alive when one was needed.
struct Prepared {
  Tensor data;
  MatrixLayout layout;
  int64_t batch_stride;
};

Prepared prepare(const Tensor& t) {
  const int nd = t.dim();
  const int64_t rows = t.size(nd - 2), cols = t.size(nd - 1);
  auto layout = matrix_layout(rows, cols, t.stride(nd - 2), t.stride(nd - 1));
  auto stride = uniform_batch_stride(t);
  if (layout && stride) return {t, *layout, *stride};
  Tensor packed = Tensor::empty(t.shape(), t.options());
  copy(packed, t);
  return {packed, {false, cols}, rows * cols};
}

// The cuBLASLt operand contributing X^T for a prepared X [rows, cols].
Operand transposed_operand(const Prepared& x, int64_t rows, int64_t cols) {
  if (x.layout.column_major) return {x.data.data_ptr(), true, rows, cols, x.layout.ld, x.batch_stride};
  return {x.data.data_ptr(), false, cols, rows, x.layout.ld, x.batch_stride};
}

struct Epilogue {
  cublasLtEpilogue_t kind = CUBLASLT_EPILOGUE_DEFAULT;
  void* vector = nullptr;
};

// out = a @ b (+ out when accumulating) with the fused epilogue. False when the epilogue could not
// be applied (then nothing was done); a plain product always succeeds.
bool product(const Tensor& out, const Tensor& a, const Tensor& b, Epilogue epilogue, bool accumulate) {
  const bool plain = epilogue.kind == CUBLASLT_EPILOGUE_DEFAULT;
  const int nd = out.dim();
  const int64_t m = out.size(nd - 2), n = out.size(nd - 1), k = a.size(nd - 1);
  if (out.numel() == 0 || k == 0) {
    if (plain && !accumulate && out.numel() > 0) fill(out, 0.0);
    return plain;
  }
  PONDER_CHECK(out.dtype() == a.dtype() || (out.dtype() == DType::f32 && a.dtype() == DType::bf16), DTypeError,
               "matmul: a ", dtype_name(a.dtype()), " product cannot be written to ", dtype_name(out.dtype()));
  const Prepared pa = prepare(a), pb = prepare(b);
  Gemm g{a.dtype(), out.dtype(), n, m, k, out.numel() / (m * n), transposed_operand(pb, k, n),
         transposed_operand(pa, m, k), out.data_ptr(), n, m * n, epilogue.kind, epilogue.vector, accumulate};
  // b shared by every batch item and a's rows evenly spaced across items: one product over all rows.
  const int64_t row_step = m == 1 ? pa.batch_stride : pa.layout.ld;
  if (g.batch > 1 && pb.batch_stride == 0 && !pa.layout.column_major && pa.batch_stride == m * row_step &&
      row_step >= k) {
    g.n = m * g.batch;
    g.b.cols = g.n;
    g.b.ld = row_step;
    g.batch = 1;
  }
  // A single product steps to no other batch item: drop its strides, which would only lower the
  // alignment the heuristic may assume.
  if (g.batch == 1) g.a.batch_stride = g.b.batch_stride = g.d_batch_stride = 0;
  return run(g, out.device().index);
}

// Column sums of grad [M, N] into sums [N], as the product ones [1, M] @ grad (fp32 accumulation,
// deterministic).
void column_sums(const Tensor& sums, const Tensor& grad) {
  const int64_t n = sums.size(0);
  Tensor ones = Tensor::empty({1, grad.size(0)}, grad.options());
  fill(ones, 1.0);
  product(sums.as_strided({1, n}, {n, 1}, sums.offset()), ones, grad, {}, false);
}

// Whether the weight gradients can be one pointer-array product: several, all dense 2-D and of one
// shape and dtype each (x [M, K], grads [M, N], grad_weights [N, K]), none empty.
bool pointer_batchable(const TensorList& grad_weights, const TensorList& grads, const Tensor& x) {
  if (grads.size() < 2 || x.dim() != 2 || !x.is_contiguous() || x.numel() == 0) return false;
  const Tensor& g0 = grads.front();
  const Tensor& w0 = grad_weights.front();
  if (g0.dim() != 2 || g0.size(0) != x.size(0) || g0.numel() == 0 || g0.dtype() != x.dtype()) return false;
  for (size_t i = 0; i < grads.size(); ++i) {
    const Tensor &g = grads[i], &w = grad_weights[i];
    if (g.shape() != g0.shape() || g.dtype() != g0.dtype() || !g.is_contiguous()) return false;
    if (w.shape() != Shape{g0.size(1), x.size(1)} || w.dtype() != w0.dtype() || !w.is_contiguous()) return false;
  }
  return true;
}

// The smallest alignment() over matrices of one dtype and leading dimension.
uint32_t least_alignment(const std::vector<const void*>& matrices, int64_t ld, DType t) {
  uint32_t least = kMaxAlignment;
  for (const void* m : matrices) least = std::min(least, alignment(m, ld, 0, t));
  return least;
}

// dW_i^T (K x N, column-major) = X^T dY_i for every i, as one product over device arrays of the
// matrices' pointers (X repeated).
void pointer_batch_weight_grads(const TensorList& grad_weights, const TensorList& grads, const Tensor& x,
                                bool accumulate) {
  const auto count = static_cast<int64_t>(grads.size());
  const int64_t m = x.size(0), k = x.size(1), n = grads.front().size(1);
  std::vector<const void*> xs(count, x.data_ptr()), dys, dws;
  for (int64_t i = 0; i < count; ++i) {
    dys.push_back(grads[i].data_ptr());
    dws.push_back(grad_weights[i].data_ptr());
  }
  std::vector<const void*> all = xs;
  all.insert(all.end(), dys.begin(), dys.end());
  all.insert(all.end(), dws.begin(), dws.end());
  Tensor arrays = Tensor::empty({3 * count}, {DType::i64, x.device()});
  write_pointer_array(arrays, all);
  auto* pointers = static_cast<void**>(arrays.data_ptr());
  const DType d_dtype = grad_weights.front().dtype();
  const PointerAlignments aligned{least_alignment(xs, k, x.dtype()), least_alignment(dys, n, x.dtype()),
                                  least_alignment(dws, k, d_dtype)};
  const Gemm g{x.dtype(), d_dtype, k, n, m, count, Operand{pointers, false, k, m, k, 0},
               Operand{pointers + count, true, n, m, n, 0}, pointers + 2 * count, k, 0, CUBLASLT_EPILOGUE_DEFAULT,
               nullptr, accumulate, aligned};
  run(g, x.device().index);
}

}  // namespace

void set_allow_tf32(bool allow) { tf32_allowed.store(allow); }
bool allow_tf32() { return tf32_allowed.load(); }

void matmul(const Tensor& out, const Tensor& a, const Tensor& b, bool accumulate) {
  product(out, a, b, {}, accumulate);
}

void linear(const Tensor& out, const Tensor& x, const Tensor& weight, const Tensor& bias) {
  const Tensor w_t = transposed(weight);
  if (!bias.defined()) return matmul(out, x, w_t);
  const Tensor packed_bias = backend::contiguous(bias);  // the fused epilogue reads it packed
  if (product(out, x, w_t, {CUBLASLT_EPILOGUE_BIAS, packed_bias.data_ptr()}, false)) return;
  // Not fusable here: start from the bias and accumulate the product onto it.
  copy(out, repeated_rows(bias, out.size(0)));
  product(out, x, w_t, {}, true);
}

void linear_backward(const Tensor& grad_x, const Tensor& grad_weight, const Tensor& grad_bias,
                     const Tensor& grad, const Tensor& x, const Tensor& weight, bool accumulate_x,
                     bool accumulate_weight) {
  if (grad_x.defined()) matmul(grad_x, grad, weight, accumulate_x);
  bool bias_done = false;
  if (grad_weight.defined()) {
    // dW = dY^T X reduces dY over the rows, the GEMM's k: the bias gradient comes out of the same
    // pass (cuBLASLt's bias vector takes D's dtype, so not under an fp32 D of bf16 operands).
    if (grad_bias.defined() && grad_weight.dtype() == grad.dtype()) {
      bias_done = product(grad_weight, transposed(grad), x, {CUBLASLT_EPILOGUE_BGRADB, grad_bias.data_ptr()},
                          accumulate_weight);
    }
    if (!bias_done) matmul(grad_weight, transposed(grad), x, accumulate_weight);
  }
  if (grad_bias.defined() && !bias_done) column_sums(grad_bias, grad);
}

void linear_weight_grads(const TensorList& grad_weights, const TensorList& grads, const Tensor& x, bool accumulate) {
  if (!pointer_batchable(grad_weights, grads, x)) {
    for (size_t i = 0; i < grads.size(); ++i) matmul(grad_weights[i], transposed(grads[i]), x, accumulate);
    return;
  }
  constexpr size_t kMaxBatch = kMaxArrayPointers / 3;  // three pointers a product
  for (size_t first = 0; first < grads.size(); first += kMaxBatch) {
    const size_t last = std::min(grads.size(), first + kMaxBatch);
    const TensorList gws(grad_weights.begin() + first, grad_weights.begin() + last);
    const TensorList gs(grads.begin() + first, grads.begin() + last);
    if (gs.size() == 1) matmul(gws[0], transposed(gs[0]), x, accumulate);
    else pointer_batch_weight_grads(gws, gs, x, accumulate);
  }
}

}  // namespace ponder::backend::cuda
