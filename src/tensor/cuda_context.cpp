#include "tensor/cuda_context.h"

#include <cuda_runtime.h>

#include <array>
#include <mutex>

#include "tensor/device.h"
#include "tensor/error.h"

namespace ponder::cuda {
namespace {
constexpr int kMaxDevices = 64;
}

void check(int status, const char* what) {
  if (status == cudaSuccess) return;
  cudaGetLastError();  // clear a non-sticky error so later calls are not blamed for it
  fail<DeviceError>(what, " failed: ", cudaGetErrorName(static_cast<cudaError_t>(status)), " (",
                    cudaGetErrorString(static_cast<cudaError_t>(status)), ")");
}

int current_device() {
  int d = 0;
  check(cudaGetDevice(&d), "cudaGetDevice");
  return d;
}

void set_device(int device) {
  int n = cuda_device_count();
  PONDER_CHECK(device >= 0 && device < n, DeviceError, "cuda:", device, " does not exist (", n,
               " CUDA device(s) visible)");
  check(cudaSetDevice(device), "cudaSetDevice");
}

Stream compute_stream(int device) {
  static std::array<Stream, kMaxDevices> streams{};
  static std::array<std::once_flag, kMaxDevices> created;
  PONDER_CHECK(device >= 0 && device < kMaxDevices, DeviceError, "cuda:", device, " is out of range");
  std::call_once(created[device], [device] {
    DeviceGuard guard(device);
    check(cudaStreamCreateWithFlags(&streams[device], cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
  });
  return streams[device];
}

void synchronize(int device) {
  DeviceGuard guard(device);
  check(cudaStreamSynchronize(compute_stream(device)), "cudaStreamSynchronize");
}

DeviceGuard::DeviceGuard(int device) {
  previous_ = current_device();
  if (previous_ != device) set_device(device);
}

DeviceGuard::~DeviceGuard() {
  int now = 0;
  if (cudaGetDevice(&now) == cudaSuccess && now != previous_) cudaSetDevice(previous_);
}

// Queried once: the set of visible devices does not change while a process runs.
int device_count_unchecked() {
  static const int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();  // clear the "no device" error
      return 0;
    }
    return n;
  }();
  return count;
}

}  // namespace ponder::cuda

namespace ponder {
int cuda_device_count() { return cuda::device_count_unchecked(); }
}  // namespace ponder
