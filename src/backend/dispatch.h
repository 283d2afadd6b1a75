// Chooses the CPU or CUDA implementation of a kernel by the device of its operands:
//   PONDER_DISPATCH(x.device(), rms_norm_forward, y, rstd, x, weight, eps);
// calls backend::cpu::rms_norm_forward or backend::cuda::rms_norm_forward. Kernels whose CUDA
// twin has not landed yet dispatch with PONDER_DISPATCH_CPU, which refuses device tensors clearly.
// Each dispatch is bracketed by a DispatchScope, which times it when an OpProfiler is active.
#pragma once

#include "backend/profiler.h"
#include "tensor/device.h"
#include "tensor/error.h"

namespace ponder::backend {

[[noreturn]] inline void no_cuda_kernel(const char* kernel) {
  fail<DeviceError>(kernel, ": no CUDA kernel yet; run on the CPU (runtime.device: cpu)");
}

}  // namespace ponder::backend

#define PONDER_DISPATCH_CPU(device, kernel, ...)                                       \
  ((void)::ponder::backend::DispatchScope(#kernel),                                    \
   (device).is_cuda() ? ::ponder::backend::no_cuda_kernel(#kernel)                     \
                      : ::ponder::backend::cpu::kernel(__VA_ARGS__))

#if PONDER_WITH_CUDA
#define PONDER_DISPATCH(device, kernel, ...)                                           \
  ((void)::ponder::backend::DispatchScope(#kernel),                                    \
   (device).is_cuda() ? ::ponder::backend::cuda::kernel(__VA_ARGS__)                   \
                      : ::ponder::backend::cpu::kernel(__VA_ARGS__))
#else
#define PONDER_DISPATCH(device, kernel, ...) PONDER_DISPATCH_CPU(device, kernel, __VA_ARGS__)
#endif
