#include "tensor/allocator.h"

#include <algorithm>
#include <cstdlib>
#include <sstream>

#include "tensor/cuda_memory.h"
#include "tensor/error.h"
#include "tensor/memory_counters.h"

namespace ponder {
namespace {

constexpr size_t kCpuAlignment = 64;

MemoryCounters& cpu_counters() {
  static MemoryCounters counters;
  return counters;
}

void* cpu_allocate(size_t nbytes) {
  if (nbytes == 0) return nullptr;
  size_t rounded = (nbytes + kCpuAlignment - 1) / kCpuAlignment * kCpuAlignment;
  void* p = std::aligned_alloc(kCpuAlignment, rounded);
  if (!p) {
    fail<OutOfMemoryError>("out of host memory allocating ", nbytes, " bytes (",
                           memory_stats(Device::cpu()).str(), ")");
  }
  cpu_counters().on_alloc(static_cast<int64_t>(nbytes));
  return p;
}

void cpu_free(void* ptr, size_t nbytes) {
  if (!ptr) return;
  std::free(ptr);
  cpu_counters().on_free(static_cast<int64_t>(nbytes));
}

}  // namespace

std::string MemoryStats::str() const {
  std::ostringstream os;
  os << "current " << current_bytes << " B, peak " << peak_bytes << " B, reserved "
     << reserved_bytes << " B";
  return os.str();
}

void* allocate_bytes(Device device, size_t nbytes) {
  return device.is_cuda() ? cuda_allocate(device.index, nbytes) : cpu_allocate(nbytes);
}

void free_bytes(Device device, void* ptr, size_t nbytes) {
  if (device.is_cuda()) {
    cuda_free(device.index, ptr, nbytes);
  } else {
    cpu_free(ptr, nbytes);
  }
}

MemoryStats memory_stats(Device device) {
  if (device.is_cuda()) return cuda_memory_stats(device.index);
  return cpu_counters().stats(cpu_counters().current());
}

void reset_peak_memory(Device device) {
  if (device.is_cuda()) {
    cuda_reset_peak_memory(device.index);
  } else {
    cpu_counters().reset_peak();
  }
}

}  // namespace ponder
