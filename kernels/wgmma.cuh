// Hopper warpgroup tensor-core building blocks (wgmma, sm_90a): 128-byte-swizzled bf16 tiles in
// shared memory, their matrix descriptors, and the m64n128k16 products with f32 accumulation.
//
// A warpgroup is 4 consecutive warps (128 threads). Its accumulator for an m64n128 product is
// float d[16][4] per thread in exactly the mma.m16n8k16 C layout of attention_mma.cuh, warp w of the
// group owning rows 16w..16w+15: d[i][0..1] = (row g, columns 8i + 2c, +1), d[i][2..3] = (row g + 8,
// same columns), g = lane / 4, c = lane % 4. An A operand held in registers (a[4]) is the
// mma.m16n8k16 A fragment of the warp's 16 rows.
//
// Swizzled tile layout (PTX ISA, "shared memory matrix layout", 128B swizzling): a [rows][64] bf16
// panel is stored row after row, 128 bytes a row, and the 16-byte chunk c of row r sits at chunk
// c ^ (r % 8); 8 rows form a 1024-byte atom that must start 1024-byte aligned. A [rows][D] tile with
// D a multiple of 64 is D / 64 such panels one after the other.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/attention_mma.cuh"

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define PONDER_WGMMA_AVAILABLE 1
#endif

namespace ponder::kernels::wgmma {

using mma::bits16;

constexpr int kPanel = 64;          // bf16 columns of a 128-byte swizzled row
constexpr int kAtomBytes = 1024;    // 8 rows of 128 bytes
constexpr int kGroupThreads = 128;  // one warpgroup

// Element (row, col) of a [rows][D] swizzled tile, as an offset in elements from the tile start.
__device__ __forceinline__ int swizzled_offset(int rows, int row, int col) {
  const int panel = col / kPanel, chunk = (col % kPanel) / 8;
  return panel * rows * kPanel + row * kPanel + ((chunk ^ (row % 8)) * 8) + col % 8;
}

// Starts copying ROWS rows of one head of a [tokens, heads, D] bf16 tensor, tokens [first, first +
// valid) (zeros past `valid`), into a swizzled [ROWS][D] tile, THREADS threads taking part.
template <int ROWS, int D, int THREADS>
__device__ __forceinline__ void load_rows(bits16* tile, const bits16* src, int64_t first, int valid, int heads,
                                          int head, int thread) {
  constexpr int kChunks = D / 8;
  static_assert(D % kPanel == 0 && ROWS % 8 == 0 && ROWS * kChunks % THREADS == 0);
#pragma unroll
  for (int step = 0; step < ROWS * kChunks / THREADS; ++step) {
    const int c = thread + step * THREADS;
    const int row = c / kChunks, col = (c % kChunks) * 8;
    const bool ok = row < valid;
    const bits16* from = ok ? src + ((first + row) * heads + head) * D + col : src;
    mma::copy_async_16(tile + swizzled_offset(ROWS, row, col), from, ok);
  }
}

// The 64-bit descriptor of a swizzled operand starting at `start` (PTX ISA, "matrix descriptor"):
// start address, leading and stride byte offsets (all >> 4), base offset 0, swizzle mode 1 = 128B.
__device__ __forceinline__ uint64_t descriptor(const bits16* start, uint32_t leading_bytes, uint32_t stride_bytes) {
  const uint64_t address = mma::shared_address(start);
  return ((address & 0x3FFFF) >> 4) | (uint64_t((leading_bytes & 0x3FFFF) >> 4) << 16) |
         (uint64_t((stride_bytes & 0x3FFFF) >> 4) << 32) | (uint64_t(1) << 62);
}

// Operand k-step ks (16 columns) of a K-major [rows][D] swizzled tile starting at row `row0` (a
// multiple of 8): the next 8-row group is one atom further; the leading offset is unused.
__device__ __forceinline__ uint64_t k_major(const bits16* tile, int rows, int row0, int ks) {
  const int column = ks * 16;
  return descriptor(tile + (column / kPanel) * rows * kPanel + row0 * kPanel + column % kPanel, 16, kAtomBytes);
}

// B operand k-step ks (rows 16 ks.. of a [rows][D] swizzled tile, the product's N running along D,
// "MN-major"): the 8-row groups along K are atoms one after the other, the 64-column groups along N
// are whole panels apart.
__device__ __forceinline__ uint64_t mn_major(const bits16* tile, int rows, int ks, uint32_t leading_bytes,
                                             uint32_t stride_bytes) {
  return descriptor(tile + ks * 16 * kPanel, leading_bytes, stride_bytes);
}

// Orders this thread's generic-proxy shared-memory writes (cp.async included) before later wgmma reads.
__device__ __forceinline__ void fence_shared_for_async() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}
// Before the first wgmma that reads registers this thread wrote (accumulators, A fragments).
__device__ __forceinline__ void fence() {
#ifdef PONDER_WGMMA_AVAILABLE
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void commit() {
#ifdef PONDER_WGMMA_AVAILABLE
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
// Waits until at most `pending` committed wgmma groups are in flight.
template <int pending>
__device__ __forceinline__ void wait() {
#ifdef PONDER_WGMMA_AVAILABLE
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(pending) : "memory");
#endif
}

// Moves registers between warpgroups: a producer warpgroup that only issues copies hands most of
// its registers to the ones that multiply (every thread of the warpgroup executes it).
template <int registers>
__device__ __forceinline__ void release_registers() {
#ifdef PONDER_WGMMA_AVAILABLE
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(registers));
#endif
}
template <int registers>
__device__ __forceinline__ void claim_registers() {
#ifdef PONDER_WGMMA_AVAILABLE
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(registers));
#endif
}

// Barrier `id` (1..15; 0 is __syncthreads) over the first `threads` threads of the CTA: the
// consumer warpgroups meet without waiting for the producer.
template <int id, int threads>
__device__ __forceinline__ void sync_threads() {
  asm volatile("bar.sync %0, %1;\n" ::"n"(id), "n"(threads) : "memory");
}

// Keeps the compiler from moving accumulator reads or writes across an asynchronous product.
template <int T>
__device__ __forceinline__ void hold(float (&d)[T][4]) {
#pragma unroll
  for (int i = 0; i < T; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e) asm volatile("" : "+f"(d[i][e])::"memory");
}

#define PONDER_WGMMA_ACC_ROW(i) "+f"(d[i][0]), "+f"(d[i][1]), "+f"(d[i][2]), "+f"(d[i][3])

// d (64xN) = A B + (accumulate ? d : 0), A and B in shared memory (TRANS_A / TRANS_B: MN-major,
// else K-major); N is 64 or 128.
template <int TRANS_A, int TRANS_B, int T>
__device__ __forceinline__ void mma_ss(float (&d)[T][4], uint64_t a, uint64_t b, bool accumulate) {
  static_assert(T == 8 || T == 16, "N = 8 T is 64 or 128");
#ifdef PONDER_WGMMA_AVAILABLE
  if constexpr (T == 16) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p, 1, 1, %67, %68;\n}\n"
        :
          PONDER_WGMMA_ACC_ROW(0),
          PONDER_WGMMA_ACC_ROW(1),
          PONDER_WGMMA_ACC_ROW(2),
          PONDER_WGMMA_ACC_ROW(3),
          PONDER_WGMMA_ACC_ROW(4),
          PONDER_WGMMA_ACC_ROW(5),
          PONDER_WGMMA_ACC_ROW(6),
          PONDER_WGMMA_ACC_ROW(7),
          PONDER_WGMMA_ACC_ROW(8),
          PONDER_WGMMA_ACC_ROW(9),
          PONDER_WGMMA_ACC_ROW(10),
          PONDER_WGMMA_ACC_ROW(11),
          PONDER_WGMMA_ACC_ROW(12),
          PONDER_WGMMA_ACC_ROW(13),
          PONDER_WGMMA_ACC_ROW(14),
          PONDER_WGMMA_ACC_ROW(15)
        : "l"(a), "l"(b), "r"(int(accumulate)), "n"(TRANS_A), "n"(TRANS_B));
  } else {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, 1, %35, %36;\n}\n"
        :
          PONDER_WGMMA_ACC_ROW(0),
          PONDER_WGMMA_ACC_ROW(1),
          PONDER_WGMMA_ACC_ROW(2),
          PONDER_WGMMA_ACC_ROW(3),
          PONDER_WGMMA_ACC_ROW(4),
          PONDER_WGMMA_ACC_ROW(5),
          PONDER_WGMMA_ACC_ROW(6),
          PONDER_WGMMA_ACC_ROW(7)
        : "l"(a), "l"(b), "r"(int(accumulate)), "n"(TRANS_A), "n"(TRANS_B));
  }
#endif
}

// d (64xN) = A B + (accumulate ? d : 0), A from registers, B in shared memory (TRANS_B: MN-major).
template <int TRANS_B, int T>
__device__ __forceinline__ void mma_rs(float (&d)[T][4], const uint32_t (&a)[4], uint64_t b, bool accumulate) {
  static_assert(T == 8 || T == 16, "N = 8 T is 64 or 128");
#ifdef PONDER_WGMMA_AVAILABLE
  if constexpr (T == 16) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, {%64, %65, %66, %67}, %68, p, 1, 1, %70;\n}\n"
        :
          PONDER_WGMMA_ACC_ROW(0),
          PONDER_WGMMA_ACC_ROW(1),
          PONDER_WGMMA_ACC_ROW(2),
          PONDER_WGMMA_ACC_ROW(3),
          PONDER_WGMMA_ACC_ROW(4),
          PONDER_WGMMA_ACC_ROW(5),
          PONDER_WGMMA_ACC_ROW(6),
          PONDER_WGMMA_ACC_ROW(7),
          PONDER_WGMMA_ACC_ROW(8),
          PONDER_WGMMA_ACC_ROW(9),
          PONDER_WGMMA_ACC_ROW(10),
          PONDER_WGMMA_ACC_ROW(11),
          PONDER_WGMMA_ACC_ROW(12),
          PONDER_WGMMA_ACC_ROW(13),
          PONDER_WGMMA_ACC_ROW(14),
          PONDER_WGMMA_ACC_ROW(15)
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(int(accumulate)), "n"(TRANS_B));
  } else {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, {%32, %33, %34, %35}, %36, p, 1, 1, %38;\n}\n"
        :
          PONDER_WGMMA_ACC_ROW(0),
          PONDER_WGMMA_ACC_ROW(1),
          PONDER_WGMMA_ACC_ROW(2),
          PONDER_WGMMA_ACC_ROW(3),
          PONDER_WGMMA_ACC_ROW(4),
          PONDER_WGMMA_ACC_ROW(5),
          PONDER_WGMMA_ACC_ROW(6),
          PONDER_WGMMA_ACC_ROW(7)
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(int(accumulate)), "n"(TRANS_B));
  }
#endif
}

#undef PONDER_WGMMA_ACC_ROW

}  // namespace ponder::kernels::wgmma
