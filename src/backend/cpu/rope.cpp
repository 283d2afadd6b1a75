#include "backend/cpu/rope.h"

#include <cmath>
#include <vector>

#include "backend/cpu/strided_loop.h"
#include "backend/rope_math.h"

namespace ponder::backend::cpu {
namespace {

void check_positions(const int64_t* positions, int64_t count) {
  for (int64_t n = 0; n < count; ++n) {
    PONDER_CHECK(positions[n] >= 0, ValueError, "rope: position ", positions[n], " at index ", n,
                 " is negative");
  }
}

template <class R>
std::vector<R> inverse_frequencies(double theta, int64_t half) {
  std::vector<R> inv_freq(half);
  for (int64_t i = 0; i < half; ++i) inv_freq[i] = rope_inverse_frequency<R>(theta, i, half);
  return inv_freq;
}

template <class T>
void rotate(T* out, const T* x, const int64_t* positions, int64_t count, int64_t heads, int64_t half,
            double theta, bool inverse) {
  using R = compute_t<T>;
  const std::vector<R> inv_freq = inverse_frequencies<R>(theta, half);
  const R sin_sign = inverse ? R(-1) : R(1);
#pragma omp parallel if (count * heads * half * 2 > kParallelGrain && count > 1)
  {
    std::vector<R> cos_a(half), sin_a(half);
#pragma omp for schedule(static)
    for (int64_t n = 0; n < count; ++n) {
      for (int64_t i = 0; i < half; ++i) {
        const R angle = R(positions[n]) * inv_freq[i];
        cos_a[i] = std::cos(angle);
        sin_a[i] = sin_sign * std::sin(angle);
      }
      for (int64_t h = 0; h < heads; ++h) {
        const int64_t base = (n * heads + h) * 2 * half;
        for (int64_t i = 0; i < half; ++i) {
          const R lo = R(x[base + i]), hi = R(x[base + half + i]);
          out[base + i] = T(lo * cos_a[i] - hi * sin_a[i]);
          out[base + half + i] = T(hi * cos_a[i] + lo * sin_a[i]);
        }
      }
    }
  }
}

}  // namespace

void rope(const Tensor& out, const Tensor& x, const Tensor& positions, double theta, bool inverse) {
  const int64_t count = positions.numel();
  const int64_t heads = x.size(x.dim() - 2), half = x.size(x.dim() - 1) / 2;
  check_positions(positions.data<int64_t>(), count);
  visit_floating(x.dtype(), "rope", [&](auto tag) {
    using T = decltype(tag);
    rotate<T>(out.data<T>(), x.data<T>(), positions.data<int64_t>(), count, heads, half, theta, inverse);
  });
}

}  // namespace ponder::backend::cpu
