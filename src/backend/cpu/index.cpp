#include "backend/cpu/index.h"

#include <algorithm>
#include <numeric>

#include "backend/cpu/strided_loop.h"

namespace ponder::backend::cpu {
namespace {

// The index values, each checked against the size of the indexed dimension.
std::vector<int64_t> checked_indices(const char* op, const Tensor& index, int dim, int64_t size) {
  std::vector<int64_t> values = index.to_vector<int64_t>();
  for (size_t j = 0; j < values.size(); ++j) {
    PONDER_CHECK(values[j] >= 0 && values[j] < size, ValueError, op, ": index ", values[j],
                 " at position ", j, " is out of range for dimension ", dim, " of size ", size);
  }
  return values;
}

// Element offsets of every position of x's dims [begin, end), in row-major order.
std::vector<int64_t> block_offsets(const Tensor& x, int begin, int end) {
  std::vector<int64_t> offsets{0};
  for (int d = begin; d < end; ++d) {
    std::vector<int64_t> next;
    next.reserve(offsets.size() * x.size(d));
    for (int64_t base : offsets) {
      for (int64_t k = 0; k < x.size(d); ++k) next.push_back(base + k * x.stride(d));
    }
    offsets = std::move(next);
  }
  return offsets;
}

bool is_dense(const std::vector<int64_t>& offsets) {
  for (size_t i = 0; i < offsets.size(); ++i) {
    if (offsets[i] != static_cast<int64_t>(i)) return false;
  }
  return true;
}

// Positions j of the index grouped by destination index[j], ascending j within each group
// (a counting sort): destination k reads members[starts[k] .. starts[k + 1]).
struct IndexGroups {
  std::vector<int64_t> starts, members;
};

IndexGroups group_by_destination(const std::vector<int64_t>& index, int64_t destinations) {
  IndexGroups g{std::vector<int64_t>(destinations + 1, 0), std::vector<int64_t>(index.size())};
  for (int64_t k : index) ++g.starts[k + 1];
  std::partial_sum(g.starts.begin(), g.starts.end(), g.starts.begin());
  std::vector<int64_t> next(g.starts.begin(), g.starts.end() - 1);
  for (size_t j = 0; j < index.size(); ++j) g.members[next[index[j]]++] = static_cast<int64_t>(j);
  return g;
}

int64_t product_of_dims(const Tensor& t, int begin, int end) {
  int64_t n = 1;
  for (int d = begin; d < end; ++d) n *= t.size(d);
  return n;
}

}  // namespace

void index_select(const Tensor& out, const Tensor& x, int dim, const Tensor& index) {
  const std::vector<int64_t> idx = checked_indices("index_select", index, dim, x.size(dim));
  const std::vector<int64_t> outer = block_offsets(x, 0, dim), inner = block_offsets(x, dim + 1, x.dim());
  const int64_t m = static_cast<int64_t>(idx.size()), row = static_cast<int64_t>(inner.size());
  const int64_t rows = static_cast<int64_t>(outer.size()) * m, step = x.stride(dim);
  const bool dense = is_dense(inner);
  visit_dtype(x.dtype(), "index_select", [&](auto tag) {
    using T = decltype(tag);
    const T* src = x.data<T>();
    T* dst = out.data<T>();
#pragma omp parallel for schedule(static) if (rows > 1 && rows * row > kParallelGrain)
    for (int64_t r = 0; r < rows; ++r) {
      const T* from = src + outer[r / m] + idx[r % m] * step;
      T* to = dst + r * row;
      if (dense) {
        std::copy(from, from + row, to);
      } else {
        for (int64_t i = 0; i < row; ++i) to[i] = from[inner[i]];
      }
    }
  });
}

void index_add(const Tensor& dst, int dim, const Tensor& index, const Tensor& src) {
  const std::vector<int64_t> idx = checked_indices("index_add", index, dim, dst.size(dim));
  const int64_t n = dst.size(dim), m = static_cast<int64_t>(idx.size());
  const int64_t rows = product_of_dims(dst, 0, dim) * n, row = product_of_dims(dst, dim + 1, dst.dim());
  const IndexGroups groups = group_by_destination(idx, n);
  visit_floating(dst.dtype(), "index_add", [&](auto tag) {
    using T = decltype(tag);
    using A = acc_t<T>;
    using C = compute_t<T>;
    T* out = dst.data<T>();
    const T* in = src.data<T>();
    // One thread owns each destination row and adds its sources in index order.
#pragma omp parallel for schedule(static) if (rows > 1 && rows * row > kParallelGrain)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t k = r % n, first = groups.starts[k], last = groups.starts[k + 1];
      if (first == last) continue;
      T* to = out + r * row;
      const T* block = in + (r / n) * m * row;
      for (int64_t i = 0; i < row; ++i) {
        A sum = A(C(to[i]));
        for (int64_t s = first; s < last; ++s) sum += A(C(block[groups.members[s] * row + i]));
        to[i] = T(static_cast<C>(sum));
      }
    }
  });
}

}  // namespace ponder::backend::cpu
