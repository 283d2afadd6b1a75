#include "tensor/allocator.h"

#include <algorithm>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

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
  cpu_counters().on_alloc(p, static_cast<int64_t>(nbytes));
  return p;
}

void cpu_free(void* ptr, size_t nbytes) {
  if (!ptr) return;
  cpu_counters().on_free(ptr, static_cast<int64_t>(nbytes));
  std::free(ptr);
}

// MemAvailable of /proc/meminfo (what can be allocated without swapping), else the free pages.
int64_t cpu_available_memory() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  int64_t kib = 0;
  while (meminfo >> key >> kib) {
    if (key == "MemAvailable:") return kib * 1024;
    meminfo.ignore(64, '\n');
  }
  return static_cast<int64_t>(sysconf(_SC_AVPHYS_PAGES)) * sysconf(_SC_PAGESIZE);
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

int64_t available_memory(Device device) {
  return device.is_cuda() ? cuda_available_memory(device.index) : cpu_available_memory();
}

void begin_memory_census(Device device) {
  if (device.is_cuda()) {
    cuda_begin_memory_census(device.index);
  } else {
    cpu_counters().begin_census();
  }
}

MemoryCensus end_memory_census(Device device) {
  return device.is_cuda() ? cuda_end_memory_census(device.index) : cpu_counters().end_census();
}

void reset_peak_memory(Device device) {
  if (device.is_cuda()) {
    cuda_reset_peak_memory(device.index);
  } else {
    cpu_counters().reset_peak();
  }
}

}  // namespace ponder
