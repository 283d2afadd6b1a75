// GPU GEMM benchmark: bf16 TFLOP/s of ponder's linear/matmul against a raw cuBLASLt call on the same
// shapes: the HRM-Text 1B projections (8192 tokens: two rows of 4096), the LM head (also over the
// 4,096 tokens of one chunk of the fused loss), their backward products, and 8192^3 as the ceiling
// check, timed as bench_support.h describes. Target: ponder within 5% of raw cuBLASLt. Then the
// projections that share an input (q/k/v/gate, gate/up) at the training micro-batch, separate
// against batched, to show what stacking their weights would buy.
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <functional>
#include <vector>

#include "bench_support.h"
#include "backend/cuda/matmul.h"
#include "ops/ops.h"
#include "tensor/cuda_context.h"

namespace {
using namespace ponder;
using bench::check;

constexpr int kWarmup = 10;
constexpr int kReps = 60;
constexpr uint64_t kWorkspaceBytes = 32u << 20;  // as ponder's

void check(cublasStatus_t status, const char* what) {
  PONDER_CHECK(status == CUBLAS_STATUS_SUCCESS, DeviceError, what, ": ", cublasLtGetStatusString(status));
}

// One product in the shapes of a dense layer, as ponder spells it (two inputs p and q) and as
// cuBLASLt does (column-major D m x n = op(A) op(B), A and B being q and p, ld = stored rows).
struct Problem {
  const char* kind;
  Shape p, q;
  std::function<Tensor(const Tensor&, const Tensor&)> ponder;
  cublasOperation_t op_a, op_b;
  int64_t m, n, k;
};

// Tokens x in -> out, and its backward products.
std::vector<Problem> layer(int64_t tokens, int64_t in, int64_t out) {
  auto T = CUBLAS_OP_T, N = CUBLAS_OP_N;
  return {
      {"fwd  Y = X W^T", {tokens, in}, {out, in}, [](const Tensor& x, const Tensor& w) { return linear(x, w); },
       T, N, out, tokens, in},
      {"dX = dY W", {tokens, out}, {out, in}, [](const Tensor& dy, const Tensor& w) { return matmul(dy, w); }, N, N,
       in, tokens, out},
      {"dW = dY^T X", {tokens, out}, {tokens, in},
       [](const Tensor& dy, const Tensor& x) { return matmul(dy.t(), x); }, N, T, in, out, tokens},
  };
}

Problem square(int64_t n) {
  return {"C = A B", {n, n}, {n, n}, [](const Tensor& a, const Tensor& b) { return matmul(a, b); }, CUBLAS_OP_N,
          CUBLAS_OP_N, n, n, n};
}

// What RawGemm writes: bf16 D, or an fp32 D it adds to (beta = 1), as weight gradients are summed.
enum class Output { bf16, f32_accumulate };

// cuBLASLt driven directly, with the heuristic's first choice, as a user of the library would; with
// pointer_batch > 0, that many products whose operands are read from device arrays of pointers.
class RawGemm {
 public:
  RawGemm(const Problem& p, cublasLtHandle_t handle, int pointer_batch = 0, Output output = Output::bf16)
      : handle_(handle), pointer_batch_(pointer_batch), accumulate_(output == Output::f32_accumulate) {
    check(cublasLtMatmulDescCreate(&desc_, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
    check(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSA, &p.op_a, sizeof(p.op_a)), "transa");
    check(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSB, &p.op_b, sizeof(p.op_b)), "transb");
    a_ = layout(p.op_a == CUBLAS_OP_N ? p.m : p.k, p.op_a == CUBLAS_OP_N ? p.k : p.m);
    b_ = layout(p.op_b == CUBLAS_OP_N ? p.k : p.n, p.op_b == CUBLAS_OP_N ? p.n : p.k);
    d_ = layout(p.m, p.n, accumulate_ ? CUDA_R_32F : CUDA_R_16BF);
    cublasLtMatmulPreference_t pref;
    check(cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate");
    check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &kWorkspaceBytes,
                                               sizeof(kWorkspaceBytes)),
          "workspace preference");
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    check(cublasLtMatmulAlgoGetHeuristic(handle_, desc_, a_, b_, d_, d_, pref, 1, &result, &found),
          "cublasLtMatmulAlgoGetHeuristic");
    PONDER_CHECK(found == 1, DeviceError, "no cuBLASLt algorithm for ", p.kind);
    algo_ = result.algo;
    cublasLtMatmulPreferenceDestroy(pref);
    workspace_ = Tensor::empty({static_cast<int64_t>(kWorkspaceBytes)}, {DType::u8, Device::cuda(0)});
  }
  ~RawGemm() {
    cublasLtMatrixLayoutDestroy(a_);
    cublasLtMatrixLayoutDestroy(b_);
    cublasLtMatrixLayoutDestroy(d_);
    cublasLtMatmulDescDestroy(desc_);
  }
  RawGemm(const RawGemm&) = delete;
  RawGemm& operator=(const RawGemm&) = delete;

  void operator()(const Tensor& p, const Tensor& q, const Tensor& out, cudaStream_t stream) const {
    launch(q.data_ptr(), p.data_ptr(), out.data_ptr(), stream);
  }
  // D = A B in cuBLASLt's terms: matrices, or device arrays of pointer_batch pointers.
  void launch(const void* a, const void* b, void* d, cudaStream_t stream) const {
    const float alpha = 1.0f, beta = accumulate_ ? 1.0f : 0.0f;
    check(cublasLtMatmul(handle_, desc_, &alpha, a, a_, b, b_, &beta, d, d_, d, d_, &algo_, workspace_.data_ptr(),
                         kWorkspaceBytes, stream),
          "cublasLtMatmul");
  }

 private:
  cublasLtMatrixLayout_t layout(int64_t rows, int64_t cols, cudaDataType_t type = CUDA_R_16BF) {
    cublasLtMatrixLayout_t l;
    check(cublasLtMatrixLayoutCreate(&l, type, rows, cols, rows), "cublasLtMatrixLayoutCreate");
    if (pointer_batch_ > 0) {
      const uint32_t mode = CUBLASLT_BATCH_MODE_POINTER_ARRAY;
      check(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_MODE, &mode, sizeof(mode)), "batch mode");
      check(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &pointer_batch_,
                                             sizeof(pointer_batch_)),
            "batch count");
    }
    return l;
  }
  cublasLtHandle_t handle_;
  int32_t pointer_batch_;
  bool accumulate_;
  cublasLtMatmulDesc_t desc_;
  cublasLtMatrixLayout_t a_, b_, d_;
  cublasLtMatmulAlgo_t algo_;
  Tensor workspace_;
};

void measure(const char* shape, const Problem& problem, cublasLtHandle_t handle, cudaStream_t stream) {
  Generator gen(1);
  const int64_t bytes = (problem.p.product() + problem.q.product()) * 2;
  const int sets = bench::rotation_copies(bytes);
  std::vector<Tensor> ps, qs;
  ps.push_back(bench::random_device(problem.p, DType::bf16, gen));
  qs.push_back(bench::random_device(problem.q, DType::bf16, gen));
  for (int i = 1; i < sets; ++i) {
    ps.push_back(ps[0].clone());
    qs.push_back(qs[0].clone());
  }
  RawGemm raw(problem, handle);
  Tensor out = problem.ponder(ps[0], qs[0]);
  double ponder_ms = bench::median_ms([&](int i) { problem.ponder(ps[i % sets], qs[i % sets]); }, kWarmup, kReps);
  double raw_ms = bench::median_ms([&](int i) { raw(ps[i % sets], qs[i % sets], out, stream); }, kWarmup, kReps);
  const double tflop = 2.0 * problem.m * problem.n * problem.k / 1e12;
  const double ponder_tflops = tflop / (ponder_ms / 1e3), raw_tflops = tflop / (raw_ms / 1e3);
  std::printf("%-24s %-12s %6lld %6lld %6lld %12.1f %10.1f %8.3f %9.1f%%\n", shape, problem.kind,
              static_cast<long long>(out.size(0)), static_cast<long long>(out.size(1)),
              static_cast<long long>(problem.k), ponder_tflops, raw_tflops, ponder_tflops / raw_tflops,
              100.0 * ponder_tflops / bench::kGemmCeilingTflops);
}

// Projections of one input by `count` weights of out x in (attention's q/k/v/gate, the MLP's
// gate/up), at the training shape: as `count` separate GEMMs (what the layers run), as one batched
// GEMM over the stacked weights (the shared input read with batch stride 0), and as one GEMM of
// count*out columns; their input gradient as products added into one buffer and as one product over
// side-by-side output gradients; their weight gradients separately, batched over stacked output
// gradients, and batched over pointers to output gradients that lie apart (raw cuBLASLt). TFLOP/s of
// the group.
void measure_group(const char* name, int64_t tokens, int64_t in, int64_t out, int64_t count, cublasLtHandle_t handle) {
  Generator gen(2);
  const Tensor x = bench::random_device({tokens, in}, DType::bf16, gen);
  const Tensor w = bench::random_device({count, out, in}, DType::bf16, gen);
  const Tensor dy = bench::random_device({count, tokens, out}, DType::bf16, gen);
  const Tensor w_rows = w.reshape({count * out, in});
  std::vector<Tensor> ws, dys;
  for (int64_t i = 0; i < count; ++i) {
    ws.push_back(w.narrow(0, i, 1).squeeze(0));
    dys.push_back(dy.narrow(0, i, 1).squeeze(0));
  }
  const double tflop = 2.0 * count * tokens * out * in / 1e12;
  auto row = [&](const char* how, const std::function<void()>& run) {
    const double ms = bench::median_ms([&](int) { run(); }, kWarmup, kReps);
    std::printf("%-24s %-30s %10.3f %10.1f %9.1f%%\n", name, how, ms, tflop / (ms / 1e3),
                100.0 * tflop / (ms / 1e3) / bench::kGemmCeilingTflops);
  };
  row("fwd, separate", [&] {
    for (const Tensor& wi : ws) linear(x, wi);
  });
  row("fwd, batched (stride-0 input)", [&] { matmul(x, w.transpose(1, 2)); });
  row("fwd, one GEMM of count*out", [&] { linear(x, w_rows); });
  // The input gradient: each product added into one bf16 buffer (beta = 1, as linear_group does), or
  // one product over the output gradients side by side (k = count*out).
  const Tensor dx = zeros({tokens, in}, x.options());
  const Tensor dy_rows = bench::random_device({tokens, count * out}, DType::bf16, gen);
  row("dX += separate, one buffer", [&] {
    for (int64_t i = 0; i < count; ++i) backend::cuda::matmul(dx, dys[i], ws[i], true);
  });
  row("dX, one GEMM of k=count*out", [&] { backend::cuda::matmul(dx, dy_rows, w_rows); });
  row("dW, separate", [&] {
    for (const Tensor& d : dys) matmul(d.t(), x);
  });
  row("dW, batched", [&] { matmul(dy.transpose(1, 2), x); });
  // The output gradients where the ops that make them leave them, apart, and the weight gradients
  // too: one product over device arrays of their pointers (column-major dW_i^T = X^T dY_i), into
  // bf16 and, as training sums them, added into fp32.
  for (Output output : {Output::bf16, Output::f32_accumulate}) {
    const bool f32 = output == Output::f32_accumulate;
    std::vector<const void*> pointers(count, x.data_ptr());
    std::vector<Tensor> apart;
    for (const Tensor& d : dys) {
      apart.push_back(d.clone());
      pointers.push_back(apart.back().data_ptr());
    }
    for (int64_t i = 0; i < count; ++i) {
      apart.push_back(zeros({out, in}, {f32 ? DType::f32 : DType::bf16, Device::cuda(0)}));
      pointers.push_back(apart.back().data_ptr());
    }
    Tensor arrays = Tensor::empty({3 * count}, {DType::i64, Device::cuda(0)});
    bench::check(cudaMemcpy(arrays.data_ptr(), pointers.data(), pointers.size() * sizeof(void*),
                            cudaMemcpyHostToDevice),
                 "cudaMemcpy (pointer arrays)");
    const Problem dw{"dW, pointer arrays", {}, {}, nullptr, CUBLAS_OP_N, CUBLAS_OP_T, in, out, tokens};
    const RawGemm pointer_array(dw, handle, static_cast<int>(count), output);
    auto* p = static_cast<void**>(arrays.data_ptr());
    if (f32) {
      row("dW += into fp32, separate", [&] {
        for (int64_t i = 0; i < count; ++i) backend::cuda::matmul(apart[count + i], dys[i].t(), x, true);
      });
    }
    row(f32 ? "dW += into fp32, pointer-array" : "dW, pointer-array batch",
        [&] { pointer_array.launch(p, p + count, p + 2 * count, cuda::compute_stream(0)); });
  }
}

}  // namespace

int main() {
  if (cuda_device_count() == 0) {
    std::fprintf(stderr, "bench_gemm: no CUDA device\n");
    return 1;
  }
  cudaStream_t stream = cuda::compute_stream(0);
  cublasLtHandle_t handle;
  check(cublasLtCreate(&handle), "cublasLtCreate");
  const int64_t tokens = 2 * 4096, d = 1536, ffn = 4096, vocab = 65536;
  std::printf("bf16 GEMMs, fp32 accumulation; out = rows x cols of the result, k = reduction length\n");
  std::printf("%-24s %-12s %6s %6s %6s %12s %10s %8s %10s\n", "shape", "product", "rows", "cols", "k",
              "ponder TF/s", "raw TF/s", "ratio", "of 796");
  struct Layer {
    const char* name;
    int64_t in, out;
  };
  for (Layer l : {Layer{"q/k/v/o  1536->1536", d, d}, Layer{"gate/up  1536->4096", d, ffn},
                  Layer{"down     4096->1536", ffn, d}, Layer{"lm head  1536->65536", d, vocab}}) {
    for (const Problem& p : layer(tokens, l.in, l.out)) measure(l.name, p, handle, stream);
  }
  // The LM head as training runs it: inside the fused loss, a chunk of tokens at a time.
  for (const Problem& p : layer(kLmHeadChunkTokens, d, vocab)) measure("lm head, one loss chunk", p, handle, stream);
  measure("ceiling  8192^3", square(8192), handle, stream);
  std::printf("\ngrouped projections, 12288 tokens (one micro-batch of 3 rows)\n%-24s %-30s %10s %10s %10s\n",
              "group", "as", "ms", "TF/s", "of 796");
  measure_group("q/k/v/gate 4x1536->1536", 3 * 4096, d, d, 4, handle);
  measure_group("gate/up 2x1536->4096", 3 * 4096, d, ffn, 2, handle);
  cublasLtDestroy(handle);
  return 0;
}
