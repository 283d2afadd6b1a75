// Id and index helpers on the GPU (see kernels/ids.cuh). The stable grouping sorts (id, position)
// pairs with CUB's radix sort, which is stable, so equal ids keep increasing positions and every
// sum over a bucket runs in the same order on every call.
#include <algorithm>
#include <bit>
#include <limits>
#include <type_traits>

#include <cub/device/device_radix_sort.cuh>

#include "backend/cuda/elementwise.h"
#include "kernels/ids.cuh"
#include "kernels/row_groups.cuh"
#include "tensor/cuda_memory.h"

namespace ponder::kernels {
namespace {

__global__ void find_out_of_range_kernel(const int64_t* ids, int64_t n, int64_t low, int64_t high,
                                         unsigned long long* first) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    if (ids[i] < low || ids[i] >= high) atomicMin(first, static_cast<unsigned long long>(i));  // order-free
  }
}

template <class U>
__global__ void gather_rows_kernel(U* out, const U* src, const int64_t* idx, int64_t rows, int64_t m, int64_t n,
                                   int64_t units) {
  const int64_t total = rows * units;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < total; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = t / units, u = t % units, id = idx[r % m];
    out[t] = id >= 0 && id < n ? src[((r / m) * n + id) * units + u] : U{};
  }
}

// Sort keys: the id, or `buckets` for an id outside them (a bad id of a deferred check), which
// then sorts after every valid one instead of among those sharing its low bits.
__global__ void keys_and_positions_kernel(const int64_t* ids, int64_t n, int64_t buckets, uint32_t* keys,
                                          int32_t* positions) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t id = ids[i];
    keys[i] = static_cast<uint32_t>(id >= 0 && id < buckets ? id : buckets);
    positions[i] = static_cast<int32_t>(i);
  }
}

// Each run of equal sorted ids marks its bucket's first and one-past-last sorted index; the run of
// bad ids (key `buckets`) marks nothing.
__global__ void bucket_bounds_kernel(const uint32_t* sorted, int64_t n, int64_t buckets, int32_t* start, int32_t* end) {
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n; k += int64_t(gridDim.x) * blockDim.x) {
    const uint32_t id = sorted[k];
    if (id >= buckets) continue;
    if (k == 0 || sorted[k - 1] != id) start[id] = static_cast<int32_t>(k);
    if (k == n - 1 || sorted[k + 1] != id) end[id] = static_cast<int32_t>(k + 1);
  }
}

template <class T>
struct BucketSumArgs {
  int64_t n, m, packs;  // destinations, sources and packs per row
  const T* src;
  T* dst;
  const int32_t* order;
  const int32_t* start;
  const int32_t* end;
  bool accumulate;
};

// Block (row, column block): destination row o * n + k, packs blockIdx.y * blockDim.x + threadIdx.x.
template <class T, int V>
__global__ void sum_buckets_kernel(BucketSumArgs<T> a) {
  const int64_t row = blockIdx.x, p = int64_t(blockIdx.y) * blockDim.x + threadIdx.x;
  if (p >= a.packs) return;
  const int64_t k = row % a.n, o = row / a.n;
  const int32_t first = a.start[k], last = a.end[k];
  if (a.accumulate && first == last) return;
  float acc[V];
  if (a.accumulate) {
    Pack<T, V> current = load_pack<V>(a.dst, row * a.packs + p);
#pragma unroll
    for (int j = 0; j < V; ++j) acc[j] = float(current.v[j]);
  } else {
#pragma unroll
    for (int j = 0; j < V; ++j) acc[j] = 0.0f;
  }
#pragma unroll 4
  for (int32_t q = first; q < last; ++q) {
    Pack<T, V> s = load_pack<V>(a.src, (o * a.m + a.order[q]) * a.packs + p);
#pragma unroll
    for (int j = 0; j < V; ++j) acc[j] += float(s.v[j]);
  }
  Pack<T, V> out;
#pragma unroll
  for (int j = 0; j < V; ++j) out.v[j] = T(acc[j]);
  store_pack<V>(a.dst, row * a.packs + p, out);
}

uint32_t* as_u32(const Tensor& t) { return reinterpret_cast<uint32_t*>(t.data<int32_t>()); }

}  // namespace

Tensor contiguous_i64(const Tensor& index) {
  if (index.dtype() == DType::i64 && index.is_contiguous()) return index;
  Tensor out = Tensor::empty(index.shape(), {DType::i64, index.device()});
  backend::cuda::copy(out, index);
  return out;
}

std::optional<BadId> first_out_of_range(const Tensor& ids, int64_t low, int64_t high) {
  const int64_t n = ids.numel();
  if (n == 0) return std::nullopt;
  cudaStream_t stream = stream_of(ids);
  Tensor first = Tensor::empty({1}, {DType::i64, ids.device()});
  cuda::check(cudaMemsetAsync(first.data_ptr(), 0xFF, sizeof(int64_t), stream), "cudaMemsetAsync");  // none yet
  find_out_of_range_kernel<<<grid_for(n), kThreads, 0, stream>>>(ids.data<int64_t>(), n, low, high,
                                                                 static_cast<unsigned long long*>(first.data_ptr()));
  check_launch("first_out_of_range");
  int64_t position = -1;
  cuda_copy_bytes(&position, Device::cpu(), first.data_ptr(), ids.device(), sizeof position);
  if (position < 0) return std::nullopt;  // still all ones
  int64_t value = 0;
  cuda_copy_bytes(&value, Device::cpu(), ids.data<int64_t>() + position, ids.device(), sizeof value);
  return BadId{position, value};
}

void gather_rows(const Tensor& out, const Tensor& src, const Tensor& idx, int64_t outer, int64_t m, int64_t n,
                 int64_t row_bytes) {
  const int64_t rows = outer * m;
  if (rows == 0 || row_bytes == 0) return;
  cudaStream_t stream = stream_of(out);
  auto launch = [&](auto unit) {
    using U = decltype(unit);
    const int64_t units = row_bytes / static_cast<int64_t>(sizeof(U));
    gather_rows_kernel<U><<<grid_for(rows * units), kThreads, 0, stream>>>(
        static_cast<U*>(out.data_ptr()), static_cast<const U*>(src.data_ptr()), idx.data<int64_t>(), rows, m, n, units);
  };
  // The widest unit that divides the row length and both base addresses.
  const uintptr_t bits = reinterpret_cast<uintptr_t>(out.data_ptr()) | reinterpret_cast<uintptr_t>(src.data_ptr()) |
                         static_cast<uintptr_t>(row_bytes);
  if (bits % 16 == 0) {
    launch(uint4{});
  } else if (bits % 8 == 0) {
    launch(uint2{});
  } else if (bits % 4 == 0) {
    launch(uint32_t{});
  } else if (bits % 2 == 0) {
    launch(uint16_t{});
  } else {
    launch(uint8_t{});
  }
  check_launch("gather_rows");
}

IdBuckets bucket_by_id(const Tensor& ids, int64_t buckets) {
  const int64_t n = ids.numel();
  constexpr int64_t kMax = std::numeric_limits<int32_t>::max();
  PONDER_CHECK(n < kMax && buckets < kMax, ValueError, "bucket_by_id: ", n, " ids over ", buckets,
               " buckets exceed the 32-bit sort");
  const TensorOptions i32{DType::i32, ids.device()};
  IdBuckets b{Tensor::empty({n}, i32), Tensor::empty({buckets}, i32), Tensor::empty({buckets}, i32)};
  cudaStream_t stream = stream_of(ids);
  for (const Tensor& bound : {b.start, b.end}) {  // empty buckets: start == end == 0
    if (buckets > 0)
      cuda::check(cudaMemsetAsync(bound.data_ptr(), 0, buckets * sizeof(int32_t), stream), "cudaMemsetAsync");
  }
  if (n == 0) return b;
  Tensor keys = Tensor::empty({n}, i32), positions = Tensor::empty({n}, i32), sorted = Tensor::empty({n}, i32);
  keys_and_positions_kernel<<<grid_for(n), kThreads, 0, stream>>>(ids.data<int64_t>(), n, buckets, as_u32(keys),
                                                                  positions.data<int32_t>());
  check_launch("bucket_by_id");
  const int end_bit = std::max(1, static_cast<int>(std::bit_width(static_cast<uint64_t>(buckets))));  // keys 0..buckets
  auto sort = [&](void* scratch, size_t& scratch_bytes) {
    cuda::check(
        cub::DeviceRadixSort::SortPairs(scratch, scratch_bytes, as_u32(keys), as_u32(sorted), positions.data<int32_t>(),
                                        b.order.data<int32_t>(), static_cast<int>(n), 0, end_bit, stream),
        "cub::DeviceRadixSort::SortPairs");
  };
  size_t scratch_bytes = 0;
  sort(nullptr, scratch_bytes);  // asks for the scratch size only
  Tensor scratch = Tensor::empty({static_cast<int64_t>(std::max<size_t>(scratch_bytes, 1))}, {DType::u8, ids.device()});
  sort(scratch.data_ptr(), scratch_bytes);
  bucket_bounds_kernel<<<grid_for(n), kThreads, 0, stream>>>(as_u32(sorted), n, buckets, b.start.data<int32_t>(),
                                                             b.end.data<int32_t>());
  check_launch("bucket_by_id");
  return b;
}

void sum_buckets(const char* op, const Tensor& dst, const Tensor& src, const IdBuckets& buckets, int64_t outer,
                 int64_t n, int64_t m, int64_t inner, bool accumulate) {
  const int64_t rows = outer * n;
  if (rows == 0 || inner == 0) return;
  visit_f32_bf16(dst.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    constexpr int V = kPack<T>;
    const bool packed = inner % V == 0 && aligned16(dst) && aligned16(src);
    auto launch = [&](auto pack) {
      constexpr int P = decltype(pack)::value;
      const int64_t packs = inner / P;
      const int threads = static_cast<int>(std::min<int64_t>(kThreads, (packs + 31) / 32 * 32));
      const dim3 grid(static_cast<unsigned>(rows), static_cast<unsigned>((packs + threads - 1) / threads));
      BucketSumArgs<T> args{n,
                            m,
                            packs,
                            src.data<T>(),
                            dst.data<T>(),
                            buckets.order.data<int32_t>(),
                            buckets.start.data<int32_t>(),
                            buckets.end.data<int32_t>(),
                            accumulate};
      sum_buckets_kernel<T, P><<<grid, threads, 0, stream_of(dst)>>>(args);
    };
    if (packed) {
      launch(std::integral_constant<int, V>{});
    } else {
      launch(std::integral_constant<int, 1>{});
    }
  });
  check_launch(op);
}

}  // namespace ponder::kernels
