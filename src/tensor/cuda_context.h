// The CUDA device context: which device is current and the stream ponder launches work on for
// each device. Header-light: no CUDA headers here (a stream is an opaque pointer), so most of the
// project compiles without them. Without CUDA support every call reports that clearly.
#pragma once

struct CUstream_st;
struct CUevent_st;

namespace ponder::cuda {

using Stream = CUstream_st*;
using Event = CUevent_st*;

int current_device();
void set_device(int device);
// ponder's compute stream on `device` (a non-blocking stream created on first use).
Stream compute_stream(int device);
// Waits until all work queued on the device's compute stream has finished.
void synchronize(int device);

// Makes `device` current while alive.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_;
};

// Throws ponder::DeviceError naming `what` and the CUDA error string unless `status` is success
// (status is a cudaError_t, passed as int to keep CUDA headers out of this header).
void check(int status, const char* what);

}  // namespace ponder::cuda
