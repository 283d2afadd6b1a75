// CPU micro-benchmark: f32 matmul GFLOP/s through ponder and through Eigen directly (ponder
// should add almost nothing on top of the GEMM), and the per-op dispatch overhead on a
// one-element tensor. Prints a table; timings are medians of repeated runs after warm-up.
#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <vector>

#include "ops/ops.h"

namespace {

using Clock = std::chrono::steady_clock;

// Median seconds per call of fn over `reps` timed calls, after `warmup` untimed ones.
double median_seconds(const std::function<void()>& fn, int warmup, int reps) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    auto start = Clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  std::nth_element(t.begin(), t.begin() + t.size() / 2, t.end());
  return t[t.size() / 2];
}

void bench_matmul() {
  std::printf("%-8s %14s %14s %10s\n", "n", "ponder GFLOP/s", "Eigen GFLOP/s", "overhead");
  for (int n : {512, 1024, 2048}) {
    ponder::Generator gen(1);
    ponder::Tensor a = ponder::randn({n, n}, gen), b = ponder::randn({n, n}, gen);
    Eigen::MatrixXf ea = Eigen::MatrixXf::Random(n, n), eb = Eigen::MatrixXf::Random(n, n), ec(n, n);
    int reps = n <= 512 ? 50 : (n <= 1024 ? 20 : 6);
    double flops = 2.0 * n * n * double(n);
    double tp = median_seconds([&] { ponder::matmul(a, b); }, 3, reps);
    double te = median_seconds([&] { ec.noalias() = ea * eb; }, 3, reps);
    std::printf("%-8d %14.1f %14.1f %9.1f%%\n", n, flops / tp / 1e9, flops / te / 1e9, (tp / te - 1) * 100);
  }
}

void bench_dispatch() {
  ponder::Tensor x = ponder::ones({1}), y = ponder::ones({1});
  ponder::Tensor w = ponder::ones({1}, {.requires_grad = true});
  const int calls = 20000;
  auto per_call = [&](const std::function<void()>& fn) {
    return median_seconds([&] {
      for (int i = 0; i < calls; ++i) fn();
    }, 2, 9) / calls * 1e6;
  };
  double plain = per_call([&] { ponder::add(x, y); });
  double recorded = per_call([&] { ponder::add(w, y); });
  double unary = per_call([&] { ponder::exp(x); });
  std::printf("\n%-40s %8s\n", "one-element op", "us/call");
  std::printf("%-40s %8.3f\n", "add (no grad)", plain);
  std::printf("%-40s %8.3f\n", "exp (no grad)", unary);
  std::printf("%-40s %8.3f\n", "add (recorded on the tape)", recorded);
}

}  // namespace

int main() {
  std::printf("ponder CPU op benchmark, %d OpenMP threads, Eigen %d.%d.%d\n\n", omp_get_max_threads(),
              EIGEN_WORLD_VERSION, EIGEN_MAJOR_VERSION, EIGEN_MINOR_VERSION);
  bench_matmul();
  bench_dispatch();
}
