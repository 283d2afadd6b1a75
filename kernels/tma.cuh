// Hopper (sm_90) tensor memory accelerator loads and the shared-memory barriers that track them.
//
// A tile is copied by the TMA unit from a tensor map (built on the host, passed as a __grid_constant__
// kernel parameter) into shared memory, 128-byte swizzled exactly as wgmma.cuh lays tiles out; the
// copy counts its bytes on an mbarrier, which completes its phase once the expected bytes have
// landed. A barrier's phases alternate parity 0, 1, 0, ...: a waiter names the parity of the phase
// it waits for. Consumers hand a buffer back through a second barrier that completes when all of
// them have arrived.
#pragma once

#include <cuda.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/attention_mma.cuh"

namespace ponder::kernels::tma {

using mma::shared_address;

__device__ __forceinline__ void init(uint64_t* barrier, int arrivals) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(shared_address(barrier)), "r"(arrivals) : "memory");
}

// Makes initialised barriers visible to the async proxy (the TMA unit) before any copy uses them.
__device__ __forceinline__ void fence_init() { asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory"); }

// The caller's arrival, announcing `bytes` of copies that will complete on this barrier.
__device__ __forceinline__ void arrive_expecting(uint64_t* barrier, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(shared_address(barrier)), "r"(bytes)
               : "memory");
}

__device__ __forceinline__ void arrive(uint64_t* barrier) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(shared_address(barrier)) : "memory");
}

// Blocks until the phase of parity `parity` has completed.
__device__ __forceinline__ void wait(uint64_t* barrier, uint32_t parity) {
  uint32_t done = 0;
  while (!done) {
    asm volatile(
        "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(shared_address(barrier)), "r"(parity)
        : "memory");
  }
}

// Starts copying the box at coordinates (c0, c1, c2) of a rank-3 tensor map into shared memory at
// `dst` (1024-byte aligned for 128-byte swizzling); its bytes complete on `barrier`.
__device__ __forceinline__ void load_box(void* dst, const CUtensorMap* map, int c0, int c1, int c2,
                                         uint64_t* barrier) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], [%5];\n" ::
          "r"(shared_address(dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(shared_address(barrier))
      : "memory");
}

// Adds `bytes` (a multiple of 16) of f32 from shared memory into global memory, element by element,
// as one bulk reduction of the TMA unit; the issuing thread tracks it in its bulk group.
__device__ __forceinline__ void reduce_add(float* global, const float* shared, uint32_t bytes) {
  asm volatile("cp.reduce.async.bulk.global.shared::cta.bulk_group.add.f32 [%0], [%1], %2;\n" ::"l"(global),
               "r"(shared_address(shared)), "r"(bytes)
               : "memory");
}

// Closes the thread's bulk group, then waits until its reductions have read their shared memory.
__device__ __forceinline__ void commit_and_wait_reads() {
  asm volatile("cp.async.bulk.commit_group;\ncp.async.bulk.wait_group.read 0;\n" ::: "memory");
}

}  // namespace ponder::kernels::tma
