// Device helpers for integer id and index tensors, shared by the embedding and index kernels:
// range checks, row gathers, and a stable grouping of positions by id for deterministic sums.
#pragma once

#include <cstdint>
#include <optional>

#include "tensor/tensor.h"

namespace ponder::kernels {

// `index` (i32 or i64, any strides, on the GPU) as a contiguous i64 tensor.
Tensor contiguous_i64(const Tensor& index);

struct BadId {
  int64_t position, value;
};
// The first element of ids (contiguous i64 on the GPU) outside [low, high), if any. Waits for the
// GPU: one small copy back, plus a second one when an id is bad.
std::optional<BadId> first_out_of_range(const Tensor& ids, int64_t low, int64_t high);

// Row gather between contiguous buffers on the GPU: out row r (of `row_bytes` bytes) is src row
// (r / m) * n + idx[r % m], for r < outer * m; zeros where idx[r % m] is outside [0, n) (a bad id
// whose check was deferred, backend/id_check.h). Copies 16 bytes per thread step where alignment
// allows.
void gather_rows(const Tensor& out, const Tensor& src, const Tensor& idx, int64_t outer, int64_t m, int64_t n,
                 int64_t row_bytes);

// The positions 0..N-1 of ids (contiguous i64 on the GPU, values in [0, buckets)) grouped by id
// with a stable sort: bucket v is order[start[v] .. end[v]), in increasing position. All i32.
struct IdBuckets {
  Tensor order, start, end;
};
IdBuckets bucket_by_id(const Tensor& ids, int64_t buckets);

// dst[o, k, :] = (accumulate ? dst[o, k, :] : 0) + sum over q in bucket k, in order, of
// src[o, order[q], :], with dst [outer, n, inner] and src [outer, m, inner] contiguous f32 or
// bf16; the sums are fp32. Without `accumulate` every row is written (empty buckets give zeros);
// with it, rows of empty buckets are left as they are.
void sum_buckets(const char* op, const Tensor& dst, const Tensor& src, const IdBuckets& buckets, int64_t outer,
                 int64_t n, int64_t m, int64_t inner, bool accumulate);

}  // namespace ponder::kernels
