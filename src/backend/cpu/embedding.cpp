#include "backend/cpu/embedding.h"

#include <algorithm>
#include <vector>

#include "backend/cpu/strided_loop.h"

namespace ponder::backend::cpu {
namespace {

// The positions of each id, grouped by a counting sort: those of id v are
// order[start[v]] .. order[start[v + 1] - 1], in increasing position.
struct IdBuckets {
  std::vector<int64_t> start, order;
};

IdBuckets bucket_by_id(const int64_t* ids, int64_t count, int64_t vocab) {
  IdBuckets b;
  b.start.assign(vocab + 1, 0);
  b.order.resize(count);
  for (int64_t i = 0; i < count; ++i) ++b.start[ids[i] + 1];
  for (int64_t v = 0; v < vocab; ++v) b.start[v + 1] += b.start[v];
  std::vector<int64_t> next(b.start.begin(), b.start.end() - 1);
  for (int64_t i = 0; i < count; ++i) b.order[next[ids[i]]++] = i;
  return b;
}

}  // namespace

void embedding_forward(const Tensor& out, const Tensor& weight, const Tensor& ids) {
  const int64_t count = ids.numel(), vocab = weight.size(0), d = weight.size(1);
  const int64_t* id = ids.data<int64_t>();
  visit_floating(weight.dtype(), "embedding", [&](auto tag) {
    using T = decltype(tag);
    const T* w = weight.data<T>();
    T* o = out.data<T>();
#pragma omp parallel for schedule(static) if (count * d > kParallelGrain && count > 1)
    for (int64_t i = 0; i < count; ++i) std::copy_n(w + id[i] * d, d, o + i * d);
  });
}

// Threads own disjoint vocabulary rows and each row adds its gradients in increasing position,
// so the result is the same for any thread count.
void embedding_backward(const Tensor& grad_weight, const Tensor& grad, const Tensor& ids) {
  const int64_t count = ids.numel(), vocab = grad_weight.size(0), d = grad_weight.size(1);
  const IdBuckets buckets = bucket_by_id(ids.data<int64_t>(), count, vocab);
  visit_floating(grad_weight.dtype(), "embedding", [&](auto tag) {
    using T = decltype(tag);
    using A = acc_t<T>;
    using C = compute_t<T>;
    const T* g = grad.data<T>();
    T* gw = grad_weight.data<T>();
#pragma omp parallel if ((count + vocab) * d > kParallelGrain)
    {
      std::vector<A> row(d);
#pragma omp for schedule(dynamic, 64)
      for (int64_t v = 0; v < vocab; ++v) {
        std::fill(row.begin(), row.end(), A(0));
        for (int64_t k = buckets.start[v]; k < buckets.start[v + 1]; ++k) {
          const T* gr = g + buckets.order[k] * d;
          for (int64_t j = 0; j < d; ++j) row[j] += A(C(gr[j]));
        }
        for (int64_t j = 0; j < d; ++j) gw[v * d + j] = T(C(row[j]));
      }
    }
  });
}

}  // namespace ponder::backend::cpu
