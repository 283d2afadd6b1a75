#include "backend/cpu/dropout.h"

#include "backend/random_math.h"

namespace ponder::backend::cpu {

void dropout(const Tensor& out, const Tensor& in, double p, uint64_t seed, uint64_t offset) {
  const uint32_t threshold = dropout_threshold(p);
  visit_floating(in.dtype(), "dropout", [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const C scale = static_cast<C>(1.0 / (1.0 - p));
    const T* src = in.data<T>();
    T* dst = out.data<T>();
    const int64_t n = in.numel();
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) {
      bool keep = dropout_keep(seed, offset, static_cast<uint64_t>(i), threshold);
      dst[i] = keep ? T(static_cast<C>(C(src[i]) * scale)) : T(C(0));
    }
  });
}

}  // namespace ponder::backend::cpu
