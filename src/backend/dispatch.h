// Chooses the CPU or CUDA implementation of a kernel by the device of its operands:
//   PONDER_DISPATCH(x.device(), rms_norm_forward, y, rstd, x, weight, eps);
// calls backend::cpu::rms_norm_forward or backend::cuda::rms_norm_forward.
#pragma once

#include "tensor/device.h"
#include "tensor/error.h"

namespace ponder::backend {

[[noreturn]] inline void no_cuda_kernel(const char* kernel) {
  fail<DeviceError>(kernel, ": no CUDA kernel yet; run on the CPU (runtime.device: cpu)");
}

}  // namespace ponder::backend

#define PONDER_DISPATCH(device, kernel, ...)                  \
  ((device).is_cuda() ? ::ponder::backend::no_cuda_kernel(#kernel) \
                      : ::ponder::backend::cpu::kernel(__VA_ARGS__))
