// index_select and index_add on the GPU, over the shared id helpers of kernels/ids.cuh: a row
// gather (contiguous x) or an element gather through an Indexer (strided x), and a stable
// grouping of the index for an ordered, deterministic index_add.
#include "backend/cuda/index.h"
#include "kernels/common.cuh"
#include "kernels/ids.cuh"

namespace ponder::kernels {
namespace {

// out[t] = x[offset of t with dim's coordinate at 0 + idx[dim's coordinate of t] * step].
template <class U>
__global__ void index_select_strided_kernel(int64_t total, Indexer<1> ix, int64_t inner, int64_t m, int64_t step,
                                            const int64_t* idx, const U* x, U* out) {
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < total; t += int64_t(gridDim.x) * blockDim.x) {
    int64_t offset[1];
    ix.offsets(t, offset);
    out[t] = x[offset[0] + idx[(t / inner) % m] * step];
  }
}

// Calls fn(U{}) with an unsigned type as wide as one element: gathers only move bytes.
template <class Fn>
void visit_element_bytes(DType dtype, Fn&& fn) {
  switch (element_size(dtype)) {
    case 1: return fn(uint8_t{});
    case 2: return fn(uint16_t{});
    case 4: return fn(uint32_t{});
    default: return fn(uint64_t{});
  }
}

int64_t product_of_dims(const Tensor& t, int begin, int end) {
  int64_t n = 1;
  for (int d = begin; d < end; ++d) n *= t.size(d);
  return n;
}

// The index as contiguous i64, each value checked against the size of the indexed dimension.
Tensor checked_index(const char* op, const Tensor& index, int dim, int64_t size) {
  Tensor idx = contiguous_i64(index);
  if (auto bad = first_out_of_range(idx, 0, size)) {
    fail<ValueError>(op, ": index ", bad->value, " at position ", bad->position, " is out of range for dimension ", dim,
                     " of size ", size);
  }
  return idx;
}

void select_strided(const Tensor& out, const Tensor& x, int dim, const Tensor& idx) {
  // x seen with out's shape and no step along dim: the Indexer gives everything but the index term.
  Strides strides = x.strides();
  strides[dim] = 0;
  const Tensor base = x.as_strided(out.shape(), strides, x.offset());
  const int64_t total = out.numel(), inner = product_of_dims(out, dim + 1, out.dim());
  visit_element_bytes(x.dtype(), [&](auto unit) {
    using U = decltype(unit);
    index_select_strided_kernel<U><<<grid_for(total), kThreads, 0, stream_of(out)>>>(
        total, make_indexer<1>({base}), inner, idx.numel(), x.stride(dim), idx.data<int64_t>(),
        static_cast<const U*>(x.data_ptr()), static_cast<U*>(out.data_ptr()));
  });
  check_launch("index_select");
}

}  // namespace
}  // namespace ponder::kernels

namespace ponder::backend::cuda {

void index_select(const Tensor& out, const Tensor& x, int dim, const Tensor& index) {
  const Tensor idx = kernels::checked_index("index_select", index, dim, x.size(dim));
  if (out.numel() == 0) return;
  if (!x.is_contiguous()) return kernels::select_strided(out, x, dim, idx);
  const int64_t outer = kernels::product_of_dims(x, 0, dim), inner = kernels::product_of_dims(x, dim + 1, x.dim());
  kernels::gather_rows(out, x, idx, outer, idx.numel(), x.size(dim),
                       inner * static_cast<int64_t>(element_size(x.dtype())));
}

void index_add(const Tensor& dst, int dim, const Tensor& index, const Tensor& src) {
  const int64_t n = dst.size(dim);
  const Tensor idx = kernels::checked_index("index_add", index, dim, n);
  const int64_t outer = kernels::product_of_dims(dst, 0, dim),
                inner = kernels::product_of_dims(dst, dim + 1, dst.dim());
  const kernels::IdBuckets buckets = kernels::bucket_by_id(idx, n);
  kernels::sum_buckets("index_add", dst, src, buckets, outer, n, idx.numel(), inner, /*accumulate=*/true);
}

}  // namespace ponder::backend::cuda
