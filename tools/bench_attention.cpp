// GPU attention benchmark: forward and backward time and TFLOP/s of the CUDA kernels on packed rows.
// The backward is timed twice: the default single-pass kernel (dQ added with atomics) and the
// two-kernel one of deterministic mode (runtime.deterministic).
//
// Workload (defaults): 2 rows of 4096 tokens, each packed with 2-8 samples of random lengths, PrefixLM
// masks with random prefixes, 12 heads of 128, bf16. The packing is printed (cu_seqlens, prefix_len)
// so the same masks can be run elsewhere (e.g. PyTorch SDPA).
//
// FLOP convention: only visible (query, key) pairs count (pairs = sum over samples and queries of the
// keys the query sees, times heads). Forward = 4 * head_dim FLOP per pair (S = QK^T and O = PV);
// backward = 2.5x forward = 10 * head_dim per pair (S recomputed, dP, dV, dK, dQ).
//
// Options: --rows N --row-len N --heads N --kv-heads N --dim 64|128 --mask causal|bidirectional|prefix_lm
//          --dtype bf16|f32 --seed N --reps N
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/attention.h"
#include "backend/determinism.h"
#include "bench_support.h"
#include "ops/ops.h"
#include "tensor/cuda_context.h"

namespace {

using namespace ponder;

struct Options {
  int rows = 2, row_len = 4096, heads = 12, kv_heads = 12, dim = 128, reps = 20;
  uint32_t seed = 1;
  AttentionMask mask = AttentionMask::prefix_lm;
  DType dtype = DType::bf16;
};

AttentionMask parse_mask(const std::string& name) {
  if (const auto mask = mask_named(name)) return *mask;
  std::fprintf(stderr, "unknown mask %s\n", name.c_str());
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i], value = argv[i + 1];
    if (key == "--rows") o.rows = std::stoi(value);
    else if (key == "--row-len") o.row_len = std::stoi(value);
    else if (key == "--heads") o.heads = std::stoi(value);
    else if (key == "--kv-heads") o.kv_heads = std::stoi(value);
    else if (key == "--dim") o.dim = std::stoi(value);
    else if (key == "--mask") o.mask = parse_mask(value);
    else if (key == "--dtype") o.dtype = parse_dtype(value);
    else if (key == "--seed") o.seed = static_cast<uint32_t>(std::stoul(value));
    else if (key == "--reps") o.reps = std::stoi(value);
    else {
      std::fprintf(stderr, "unknown option %s\n", key.c_str());
      std::exit(2);
    }
  }
  return o;
}

// Each row split into 2-8 samples at random cut points; prefixes uniform in [0, len].
struct Packing {
  std::vector<int> cu_seqlens{0}, prefix_len;
};

Packing random_packing(const Options& o) {
  std::mt19937 gen(o.seed);
  Packing p;
  for (int r = 0; r < o.rows; ++r) {
    const int samples = std::uniform_int_distribution<int>(2, 8)(gen);
    std::vector<int> cuts = {0, o.row_len};
    while (static_cast<int>(cuts.size()) < samples + 1) {
      const int cut = std::uniform_int_distribution<int>(1, o.row_len - 1)(gen);
      if (std::find(cuts.begin(), cuts.end(), cut) == cuts.end()) cuts.push_back(cut);
    }
    std::sort(cuts.begin(), cuts.end());
    for (size_t s = 1; s < cuts.size(); ++s) {
      const int len = cuts[s] - cuts[s - 1];
      p.cu_seqlens.push_back(p.cu_seqlens.back() + len);
      p.prefix_len.push_back(std::uniform_int_distribution<int>(0, len)(gen));
    }
  }
  return p;
}

// Visible (query, key) pairs of one head.
double visible_pairs(const Packing& p, AttentionMask mask) {
  double pairs = 0;
  for (size_t s = 0; s + 1 < p.cu_seqlens.size(); ++s) {
    const int64_t len = p.cu_seqlens[s + 1] - p.cu_seqlens[s], prefix = p.prefix_len[s];
    for (int64_t i = 0; i < len; ++i) {
      switch (mask) {
        case AttentionMask::causal: pairs += double(i + 1); break;
        case AttentionMask::bidirectional: pairs += double(len); break;
        case AttentionMask::prefix_lm: pairs += double(std::max(i + 1, prefix)); break;
      }
    }
  }
  return pairs;
}

Tensor i32_on_gpu(const std::vector<int>& values) {
  return tensor(std::vector<double>(values.begin(), values.end()), {int64_t(values.size())}, {.dtype = DType::i32})
      .to(Device::cuda(0));
}

void print_list(const char* name, const std::vector<int>& values) {
  std::printf("%s = [", name);
  for (size_t i = 0; i < values.size(); ++i) std::printf(i ? ", %d" : "%d", values[i]);
  std::printf("]\n");
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  if (cuda_device_count() == 0) {
    std::fprintf(stderr, "bench_attention: no CUDA device\n");
    return 1;
  }
  const Packing packing = random_packing(o);
  const int64_t tokens = int64_t(o.rows) * o.row_len;
  AttentionSpec spec{.mask = o.mask, .cu_seqlens = i32_on_gpu(packing.cu_seqlens)};
  if (o.mask == AttentionMask::prefix_lm) spec.prefix_len = i32_on_gpu(packing.prefix_len);

  Generator gen(o.seed);
  const TensorOptions on_gpu{.dtype = o.dtype, .device = Device::cuda(0)};
  auto random = [&](int64_t heads) { return randn({tokens, heads, o.dim}, gen).to(o.dtype).to(Device::cuda(0)); };
  const Tensor q = random(o.heads), k = random(o.kv_heads), v = random(o.kv_heads), grad_out = random(o.heads);
  const Tensor out = Tensor::empty(q.shape(), on_gpu), dq = Tensor::empty(q.shape(), on_gpu);
  const Tensor dk = Tensor::empty(k.shape(), on_gpu), dv = Tensor::empty(v.shape(), on_gpu);
  const Tensor lse = Tensor::empty({o.heads, tokens}, {.dtype = DType::f32, .device = Device::cuda(0)});
  const double scale = 1.0 / std::sqrt(double(o.dim));

  // Compute-bound: the operands are not rotated (each K/V tile is read by many query blocks anyway).
  const double forward =
      bench::median_ms([&](int) { backend::cuda::attention_forward(out, lse, q, k, v, spec, scale); }, 3, o.reps) / 1e3;
  auto backward_seconds = [&](bool deterministic) {
    backend::set_deterministic(deterministic);
    const double ms = bench::median_ms(
        [&](int) { backend::cuda::attention_backward(dq, dk, dv, grad_out, q, k, v, out, lse, spec, scale); }, 3,
        o.reps);
    backend::set_deterministic(false);
    return ms / 1e3;
  };
  const double backward = backward_seconds(false), backward_deterministic = backward_seconds(true);

  const double pairs = visible_pairs(packing, o.mask) * o.heads;
  const double forward_flop = 4.0 * o.dim * pairs, backward_flop = 2.5 * forward_flop;
  std::printf("attention %s, %d rows x %d tokens, %d heads (%d kv) x %d, %s; seed %u\n", mask_name(o.mask), o.rows,
              o.row_len, o.heads, o.kv_heads, o.dim, std::string(dtype_name(o.dtype)).c_str(), o.seed);
  print_list("cu_seqlens", packing.cu_seqlens);
  print_list("prefix_len", packing.prefix_len);
  std::printf("visible pairs per head: %.0f (%.1f%% of the %d x %d rows)\n", pairs / o.heads,
              100.0 * pairs / o.heads / (double(o.rows) * o.row_len * o.row_len), o.rows, o.row_len);
  auto print_pass = [](const char* pass, double seconds, double flop) {
    std::printf("%-24s %10.3f %10.1f\n", pass, seconds * 1e3, flop / seconds / 1e12);
  };
  std::printf("%-24s %10s %10s\n", "pass", "ms", "TFLOP/s");
  print_pass("forward", forward, forward_flop);
  print_pass("backward", backward, backward_flop);
  print_pass("backward (deterministic)", backward_deterministic, backward_flop);
}
