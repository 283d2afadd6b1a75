// Device memory through the CUDA runtime, with per-device statistics. (The caching, stream-aware
// pool replaces the direct cudaMalloc here in the CUDA backend work.)
#include "tensor/cuda_memory.h"

#include <cuda_runtime.h>

#include <array>

#include "tensor/error.h"
#include "tensor/memory_counters.h"

namespace ponder {
namespace {

constexpr int kMaxDevices = 64;

std::array<MemoryCounters, kMaxDevices>& counters() {
  static std::array<MemoryCounters, kMaxDevices> c;
  return c;
}

void check_index(int device) {
  int n = cuda_device_count();
  PONDER_CHECK(device >= 0 && device < n, DeviceError, "cuda:", device,
               " does not exist (", n, " CUDA device(s) visible)");
}

// Makes `device` current for the duration of a runtime call.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    cudaGetDevice(&previous_);
    if (previous_ != device) cudaSetDevice(device);
  }
  ~DeviceGuard() { cudaSetDevice(previous_); }

 private:
  int previous_ = 0;
};

}  // namespace

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return 0;
  }
  return n;
}

void* cuda_allocate(int device, size_t nbytes) {
  check_index(device);
  if (nbytes == 0) return nullptr;
  DeviceGuard guard(device);
  void* p = nullptr;
  cudaError_t err = cudaMalloc(&p, nbytes);
  if (err != cudaSuccess) {
    cudaGetLastError();
    fail<OutOfMemoryError>("cudaMalloc of ", nbytes, " bytes on cuda:", device, " failed: ",
                           cudaGetErrorString(err), " (", cuda_memory_stats(device).str(), ")");
  }
  counters()[device].on_alloc(static_cast<int64_t>(nbytes));
  return p;
}

void cuda_free(int device, void* ptr, size_t nbytes) {
  if (!ptr) return;
  DeviceGuard guard(device);
  cudaFree(ptr);
  counters()[device].on_free(static_cast<int64_t>(nbytes));
}

MemoryStats cuda_memory_stats(int device) {
  return counters()[device].stats(counters()[device].current());
}

void cuda_reset_peak_memory(int device) {
  counters()[device].reset_peak();
}

void cuda_copy_bytes(void* dst, Device dst_device, const void* src, Device src_device,
                     size_t nbytes) {
  if (nbytes == 0) return;
  DeviceGuard guard(dst_device.is_cuda() ? dst_device.index : src_device.index);
  cudaError_t err = cudaMemcpy(dst, src, nbytes, cudaMemcpyDefault);
  PONDER_CHECK(err == cudaSuccess, DeviceError, "cudaMemcpy of ", nbytes, " bytes from ",
               src_device, " to ", dst_device, " failed: ", cudaGetErrorString(err));
}

}  // namespace ponder
