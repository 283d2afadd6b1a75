#include "backend/cpu/random.h"

#include <cmath>

#include "backend/random_math.h"

namespace ponder::backend::cpu {

void fill_uniform(const Tensor& t, double low, double high, uint64_t seed, uint64_t offset) {
  visit_floating(t.dtype(), "uniform_", [&](auto tag) {
    using T = decltype(tag);
    T* p = t.data<T>();
    const int64_t n = t.numel();
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) {
      double u = uniform_at(seed, offset, static_cast<uint64_t>(i));
      p[i] = T(static_cast<compute_t<T>>(low + (high - low) * u));
    }
  });
}

void fill_normal(const Tensor& t, double mean, double std, double wrap, uint64_t seed, uint64_t offset) {
  visit_floating(t.dtype(), "normal_", [&](auto tag) {
    using T = decltype(tag);
    T* p = t.data<T>();
    const int64_t n = t.numel();
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) {
      double z = normal_at(seed, offset, static_cast<uint64_t>(i));
      if (wrap > 0) z = std::fmod(z, wrap);
      p[i] = T(static_cast<compute_t<T>>(mean + std * z));
    }
  });
}

}  // namespace ponder::backend::cpu
