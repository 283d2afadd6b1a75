// Warp-level bf16 tensor-core building blocks for the flash attention kernels (sm_80+ PTX):
// asynchronous global->shared copies (kernels/async_copy.cuh), ldmatrix operand loads, mma.m16n8k16, two warp GEMMs and
// fp32 reductions into global memory.
//
// Fragment layouts (PTX ISA, mma.m16n8k16 .bf16; g = lane / 4, c = lane % 4):
//   A (16x16, row-major) a[4]: a0 = (row g, cols 2c..2c+1), a1 = (g+8, 2c..), a2 = (g, 8+2c..), a3 = (g+8, 8+2c..)
//   B (16x8, k x n)      b[2]: b0 = (k 2c..2c+1, col g),   b1 = (k 8+2c..8+2c+1, col g)
//   C (16x8, f32)        c[4]: c0, c1 = (row g, cols 2c, 2c+1), c2, c3 = (row g+8, cols 2c, 2c+1)
// Each 32-bit register holds two bf16, the lower k (or column) index in the low half.
// A tile in shared memory is row-major with a row stride of `ld` elements; rows are padded by 16
// bytes (ld = width + 8) so the 8 rows one ldmatrix phase reads fall in 8 different bank groups.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "kernels/async_copy.cuh"

namespace ponder::kernels::mma {

// Shared-memory tiles hold raw bf16 bits.
using bits16 = uint16_t;

// The asynchronous copies of kernels/async_copy.cuh, under the names these kernels use.
using kernels::commit_copies;
using kernels::copy_async_16;
using kernels::shared_address;
using kernels::wait_copies;

// Four 8x8 b16 matrices; lanes 8m..8m+7 give the row addresses of matrix m, which lands in r[m]
// (lane holds row lane/4, columns 2(lane%4), +1 of it).
__device__ __forceinline__ void load_matrix_x4(uint32_t (&r)[4], const bits16* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(p)));
}

// As load_matrix_x4 but each matrix transposed: lane holds rows 2(lane%4), +1 of column lane/4.
__device__ __forceinline__ void load_matrix_x4_trans(uint32_t (&r)[4], const bits16* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(p)));
}

// d += a * b on one 16x8x16 tile, f32 accumulation.
__device__ __forceinline__ void mma_16x8x16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// *to += {x, y} (two consecutive floats, 8-byte aligned) without reading the result back; one
// vector reduction on sm_90, two scalar ones before it.
__device__ __forceinline__ void add_pair(float* to, float x, float y) {
#if __CUDA_ARCH__ >= 900
  asm volatile("red.global.add.v2.f32 [%0], {%1, %2};\n" ::"l"(to), "f"(x), "f"(y) : "memory");
#else
  atomicAdd(to, x);
  atomicAdd(to + 1, y);
#endif
}

// Two floats rounded to nearest-even bf16, `lo` in the low half.
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

// A warp owns MT row tiles of 16 rows (m-tiles); accumulators are acc[MT][N / 8][4], and every B
// fragment loaded from shared memory feeds all MT m-tiles.
//
// A operand source: MT consecutive 16-row tiles at `rows` in shared memory (row-major, 16 MT x K).
struct SharedA {
  const bits16* rows;
  int ld;
  // Lanes 0-15 address rows 0-15 of m-tile m at column 16ks, lanes 16-31 the same rows at column
  // 16ks + 8: matrices (rows 0-7, k 0-7), (8-15, 0-7), (0-7, 8-15), (8-15, 8-15) = a0..a3.
  __device__ __forceinline__ void operator()(int m, int ks, uint32_t (&a)[4]) const {
    const int lane = threadIdx.x % 32;
    load_matrix_x4(a, rows + (m * 16 + lane % 16) * ld + ks * 16 + (lane / 16) * 8);
  }
};

// A operand source: MT consecutive 16-row tiles stored transposed (k-major: element (row r, k) at
// `cols[k * ld + r]`), e.g. dS read from the dS^T tile another warp wrote. Transposed x4 ldmatrix:
// lanes 0-7 address k 0-7 at row 0 (a0), 8-15 k 0-7 at row 8 (a1), 16-23 k 8-15 at row 0 (a2),
// 24-31 k 8-15 at row 8 (a3); each lane then holds rows g and k 2c, 2c+1, the A layout.
struct SharedAT {
  const bits16* cols;
  int ld;
  __device__ __forceinline__ void operator()(int m, int ks, uint32_t (&a)[4]) const {
    const int lane = threadIdx.x % 32;
    load_matrix_x4_trans(a, cols + (ks * 16 + (lane / 16) * 8 + lane % 8) * ld + m * 16 + ((lane / 8) % 2) * 8);
  }
};

// A operand source: accumulator tiles in registers (acc[MT][K / 8][4], C layout), rounded to bf16.
// The C layouts of column tiles 2ks and 2ks+1 are exactly a0/a1 and a2/a3 of k-step ks.
template <int MT, int K>
struct RegisterA {
  const float (&acc)[MT][K / 8][4];
  __device__ __forceinline__ void operator()(int m, int ks, uint32_t (&a)[4]) const {
    a[0] = pack_bf16(acc[m][2 * ks][0], acc[m][2 * ks][1]);
    a[1] = pack_bf16(acc[m][2 * ks][2], acc[m][2 * ks][3]);
    a[2] = pack_bf16(acc[m][2 * ks + 1][0], acc[m][2 * ks + 1][1]);
    a[3] = pack_bf16(acc[m][2 * ks + 1][2], acc[m][2 * ks + 1][3]);
  }
};

// acc (16 MT x N) += A (16 MT x K) * Y^T, with Y an N x K row-major tile in shared memory (e.g.
// S = Q K^T with Y = K). One x4 ldmatrix gives the B fragments of two column tiles: lanes 0-7 rows
// 0-7 at k 0-7 (b0 of tile 2np), 8-15 rows 0-7 at k 8-15 (b1), 16-23 rows 8-15 at k 0-7 (b0 of tile
// 2np+1), 24-31 rows 8-15 at k 8-15 (b1).
template <int MT, int K, int N, class ASource>
__device__ __forceinline__ void gemm_a_yt(float (&acc)[MT][N / 8][4], const ASource& a_source, const bits16* y,
                                          int ld) {
  const int lane = threadIdx.x % 32;
  const bits16* lane_y = y + ((lane / 16) * 8 + lane % 8) * ld + ((lane / 8) % 2) * 8;
#pragma unroll
  for (int ks = 0; ks < K / 16; ++ks) {
    uint32_t a[MT][4];
#pragma unroll
    for (int m = 0; m < MT; ++m) a_source(m, ks, a[m]);
#pragma unroll
    for (int np = 0; np < N / 16; ++np) {
      uint32_t b[4];
      load_matrix_x4(b, lane_y + np * 16 * ld + ks * 16);
#pragma unroll
      for (int m = 0; m < MT; ++m) {
        mma_16x8x16(acc[m][2 * np], a[m], b[0], b[1]);
        mma_16x8x16(acc[m][2 * np + 1], a[m], b[2], b[3]);
      }
    }
  }
}

// acc (16 MT x N) += A (16 MT x K) * Y, with Y a K x N row-major tile in shared memory (e.g. O += P V
// with Y = V). Transposed x4 ldmatrix: lanes 0-7 address rows k 0-7 at column 0 (b0 of tile 2np),
// 8-15 rows k 8-15 at column 0 (b1), 16-23 rows k 0-7 at column 8 (b0 of 2np+1), 24-31 rows 8-15 at
// column 8 (b1).
template <int MT, int K, int N, class ASource>
__device__ __forceinline__ void gemm_a_y(float (&acc)[MT][N / 8][4], const ASource& a_source, const bits16* y,
                                         int ld) {
  const int lane = threadIdx.x % 32;
  const bits16* lane_y = y + (lane % 16) * ld + (lane / 16) * 8;
#pragma unroll
  for (int ks = 0; ks < K / 16; ++ks) {
    uint32_t a[MT][4];
#pragma unroll
    for (int m = 0; m < MT; ++m) a_source(m, ks, a[m]);
#pragma unroll
    for (int np = 0; np < N / 16; ++np) {
      uint32_t b[4];
      load_matrix_x4_trans(b, lane_y + ks * 16 * ld + np * 16);
#pragma unroll
      for (int m = 0; m < MT; ++m) {
        mma_16x8x16(acc[m][2 * np], a[m], b[0], b[1]);
        mma_16x8x16(acc[m][2 * np + 1], a[m], b[2], b[3]);
      }
    }
  }
}

template <int A, int B, int C>
__device__ __forceinline__ void zero(float (&acc)[A][B][C]) {
#pragma unroll
  for (int i = 0; i < A; ++i)
#pragma unroll
    for (int j = 0; j < B; ++j)
#pragma unroll
      for (int k = 0; k < C; ++k) acc[i][j][k] = 0.f;
}

}  // namespace ponder::kernels::mma
