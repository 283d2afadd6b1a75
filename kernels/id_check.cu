// Id range checks on the GPU (backend/id_check.h). One block scans the ids; each thread stops at
// its first bad one and the block keeps the smallest position, so the record names the first bad
// id of the tensor. The record keeps the first failure since it was last read: a later check does
// not overwrite it.
#include <array>
#include <memory>
#include <mutex>

#include "backend/cuda/id_check.h"
#include "kernels/common.cuh"
#include "kernels/rows.cuh"
#include "tensor/cuda_memory.h"

namespace ponder::backend::cuda {
namespace {
using namespace kernels;

constexpr int kCheckThreads = 1024;
constexpr int kMaxDevices = 64;

// The record's words: position (-1 while nothing is recorded), value, bound, check.
constexpr int kRecordWords = 4;
using Record = std::array<int64_t, kRecordWords>;

struct FirstPosition {
  int64_t none;
  __device__ int64_t identity() const { return none; }
  __device__ int64_t combine(int64_t a, int64_t b) const { return a < b ? a : b; }
  __device__ int64_t shuffle(int64_t s, int mask) const { return shuffle_xor(s, mask); }
};

template <class I>
__global__ void record_first_bad_id(int64_t* record, const I* ids, int64_t n, int64_t bound, bool has_allowed,
                                    int64_t allowed, int64_t check) {
  __shared__ int64_t scratch[kWarp];
  const FirstPosition op{n};
  int64_t first = n;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const int64_t id = ids[i];
    if ((id < 0 || id >= bound) && !(has_allowed && id == allowed)) {
      first = i;
      break;
    }
  }
  first = block_reduce(first, op, scratch);
  if (threadIdx.x == 0 && first < n && record[0] < 0) {
    record[0] = first;
    record[1] = ids[first];
    record[2] = bound;
    record[3] = check;
  }
}

// Queued on the compute stream, so the kernels after it see the record cleared.
void clear(void* record, int device) {
  ponder::cuda::DeviceGuard guard(device);
  ponder::cuda::check(cudaMemsetAsync(record, 0xFF, sizeof(Record), ponder::cuda::compute_stream(device)),
                      "cudaMemsetAsync (id check record)");
}

// One record per device, allocated (and cleared) on first use, kept for the process. Not from the
// caching allocator: it must outlive any CUDA graph that writes it. Not made while the stream
// records a graph, which would hold the clearing instead of running it.
class Records {
 public:
  int64_t* of(int device) {
    std::lock_guard<std::mutex> lock(mutex_);
    PONDER_CHECK(device >= 0 && device < kMaxDevices, DeviceError, "id checks: cuda:", device, " is out of range");
    if (!records_[device]) {
      ponder::cuda::DeviceGuard guard(device);
      cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
      ponder::cuda::check(cudaStreamIsCapturing(ponder::cuda::compute_stream(device), &capture),
                          "cudaStreamIsCapturing (id check record)");
      PONDER_CHECK(capture == cudaStreamCaptureStatusNone, DeviceError, "id checks: first used on cuda:", device,
                   " while a CUDA graph records; run the recorded work once without recording first");
      void* p = nullptr;
      ponder::cuda::check(cudaMalloc(&p, sizeof(Record)), "cudaMalloc (id check record)");
      clear(p, device);
      records_[device] = static_cast<int64_t*>(p);
    }
    return records_[device];
  }

  // The device's record, or null before its first use.
  int64_t* existing(int device) {
    std::lock_guard<std::mutex> lock(mutex_);
    return device >= 0 && device < kMaxDevices ? records_[device] : nullptr;
  }

 private:
  std::mutex mutex_;
  std::array<int64_t*, kMaxDevices> records_{};
};

Records& records() {
  static Records r;
  return r;
}

// Reads the device's record (waiting for the device) and, when it holds an error, clears it and throws.
void raise_recorded(int device) {
  int64_t* record = records().of(device);
  Record host;
  cuda_copy_bytes(host.data(), Device::cpu(), record, Device::cuda(device), sizeof(Record));
  if (host[0] < 0) return;
  clear(record, device);
  fail<ValueError>(id_check_message(static_cast<IdCheck>(host[3]), host[1], host[0], host[2]));
}

}  // namespace

void check_ids(IdCheck which, const Tensor& ids, int64_t bound, std::optional<int64_t> allowed) {
  const int device = ids.device().index;
  int64_t* record = records().of(device);
  auto launch = [&](auto* data) {
    record_first_bad_id<<<1, kCheckThreads, 0, stream_of(ids)>>>(record, data, ids.numel(), bound,
                                                                 allowed.has_value(), allowed.value_or(0),
                                                                 static_cast<int64_t>(which));
  };
  if (ids.dtype() == DType::i32) {
    launch(ids.data<int32_t>());
  } else {
    launch(ids.data<int64_t>());
  }
  check_launch("check_ids");
  if (!id_checks_deferred()) raise_recorded(device);
}

void raise_deferred_id_checks(int device) { raise_recorded(device); }

void clear_id_checks(int device) noexcept {
  try {
    if (int64_t* record = records().existing(device)) clear(record, device);
  } catch (...) {
    cudaGetLastError();  // called while unwinding: the error in flight is the one to report
  }
}

}  // namespace ponder::backend::cuda
