// Device memory: a caching, stream-aware allocator. cudaMalloc and cudaFree are slow and
// synchronise the device, so memory freed by a tensor goes back to a pool and is handed out again
// for later requests on the same stream (stream order then guarantees the previous user's kernels
// have finished with it). Blocks are carved from segments (2 MiB for requests up to 1 MiB, 64 MiB
// for those up to 16 MiB, rounded to 2 MiB for larger ones), split to fit and merged again with
// free neighbours when released.
//
// A private pool (for the work CUDA graphs record) tags the segments made while it is in use:
// their blocks go only to requests made while it is in use, and empty_cache leaves them alone,
// since a graph reads and writes those addresses on every replay. Retiring the pool hands its
// blocks to the shared pool (0), the free ones at once and the live ones when they are released.
#include "tensor/cuda_memory.h"

#include <cuda_runtime.h>

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <tuple>
#include <utility>
#include <unordered_map>
#include <vector>

#include "tensor/cuda_context.h"
#include "tensor/error.h"
#include "tensor/memory_counters.h"

namespace ponder {
namespace {

constexpr size_t kAlignment = 512;
constexpr size_t kSmallRequest = 1 << 20;  // requests up to 1 MiB share 2 MiB segments
constexpr size_t kSmallSegment = 2 << 20;
// Requests up to 16 MiB share 64 MiB segments: each in its own segment, rounded to the 2 MiB of
// cudaMalloc, one of 9 MiB (a 1536 x 1536 fp32 optimizer moment) would hold 10.
constexpr size_t kMediumRequest = 16 << 20;
constexpr size_t kMediumSegment = 64 << 20;
constexpr size_t kSegmentRound = 2 << 20;
constexpr int kMaxDevices = 64;

size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

std::atomic<bool> poison_allocations{false};

struct Block {
  int pool;  // 0: shared; else the private pool whose segment holds it
  cuda::Stream stream;
  size_t size;
  char* ptr;
  bool small;
  bool free = true;
  Block* prev = nullptr;  // neighbours inside the same segment
  Block* next = nullptr;
};

struct BySizeThenAddress {
  bool operator()(const Block* a, const Block* b) const {
    return std::tie(a->pool, a->stream, a->size, a->ptr) < std::tie(b->pool, b->stream, b->size, b->ptr);
  }
};

class DevicePool {
 public:
  explicit DevicePool(int device) : device_(device) {}

  void* allocate(size_t nbytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    const size_t size = round_up(nbytes, kAlignment);
    const bool small = size <= kSmallRequest;
    cuda::Stream stream = cuda::compute_stream(device_);
    Block* block = take_free(stream, size, small);
    if (!block) block = new_segment(stream, size, small, nbytes);
    split(block, size);
    block->free = false;
    if (poison_allocations.load(std::memory_order_relaxed)) {
      cuda::DeviceGuard guard(device_);
      cuda::check(cudaMemsetAsync(block->ptr, 0xFF, block->size, stream), "cudaMemsetAsync");
    }
    live_[block->ptr] = block;
    counters_.on_alloc(block->ptr, static_cast<int64_t>(block->size));
    return block->ptr;
  }

  void release(void* ptr) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = live_.find(ptr);
    if (it == live_.end()) return;
    Block* block = it->second;
    live_.erase(it);
    counters_.on_free(block->ptr, static_cast<int64_t>(block->size));
    block->free = true;
    if (retired_.count(block->pool)) block->pool = 0;
    block = merge(block, block->prev);
    block = merge(block, block->next);
    pool(block->small).insert(block);
  }

  // Returns every segment that is entirely free to the driver.
  void empty_cache() {
    std::lock_guard<std::mutex> lock(mutex_);
    release_free_segments();
  }

  int new_private_pool() {
    std::lock_guard<std::mutex> lock(mutex_);
    return next_pool_++;
  }

  int use_pool(int id) {
    std::lock_guard<std::mutex> lock(mutex_);
    PONDER_CHECK(id == 0 || !retired_.count(id), ValueError, "cuda:", device_, ": private pool ", id, " was retired");
    return std::exchange(active_pool_, id);
  }

  void retire_private_pool(int id) {
    std::lock_guard<std::mutex> lock(mutex_);
    retired_.insert(id);
    for (bool small : {true, false}) {
      auto& p = pool(small);
      std::vector<Block*> moved;
      for (auto it = p.begin(); it != p.end();) {
        if ((*it)->pool != id) {
          ++it;
          continue;
        }
        moved.push_back(*it);
        it = p.erase(it);
      }
      for (Block* b : moved) {
        b->pool = 0;
        p.insert(b);
      }
    }
  }

  MemoryStats stats() const { return counters_.stats(reserved_); }
  void reset_peak() { counters_.reset_peak(); }
  MemoryCounters& counters() { return counters_; }

 private:
  std::set<Block*, BySizeThenAddress>& pool(bool small) { return small ? small_free_ : large_free_; }

  // The smallest free block of the active pool and this stream that fits.
  Block* take_free(cuda::Stream stream, size_t size, bool small) {
    auto& p = pool(small);
    Block key{active_pool_, stream, size, nullptr, small};
    auto it = p.lower_bound(&key);
    if (it == p.end() || (*it)->pool != active_pool_ || (*it)->stream != stream) return nullptr;
    Block* b = *it;
    p.erase(it);
    return b;
  }

  Block* new_segment(cuda::Stream stream, size_t size, bool small, size_t requested) {
    const size_t segment =
        small ? kSmallSegment : (size <= kMediumRequest ? kMediumSegment : round_up(size, kSegmentRound));
    cuda::DeviceGuard guard(device_);
    void* ptr = nullptr;
    cudaError_t err = cudaMalloc(&ptr, segment);
    if (err != cudaSuccess) {  // give cached segments back and try once more
      cudaGetLastError();
      release_free_segments();
      err = cudaMalloc(&ptr, segment);
    }
    if (err != cudaSuccess) {
      cudaGetLastError();
      MemoryStats s = counters_.stats(reserved_);
      fail<OutOfMemoryError>("out of memory on cuda:", device_, ": ", requested, " bytes requested (",
                             s.str(), ", ", live_.size(), " live blocks): ", cudaGetErrorString(err));
    }
    reserved_ += static_cast<int64_t>(segment);
    return new Block{active_pool_, stream, segment, static_cast<char*>(ptr), small};
  }

  // Leaves `size` bytes in `block` and returns the rest to the pool when it is worth keeping.
  void split(Block* block, size_t size) {
    const size_t rest = block->size - size;
    const size_t min_rest = block->small ? kAlignment : kSmallRequest + 1;
    if (rest < min_rest) return;
    Block* tail = new Block{block->pool, block->stream, rest, block->ptr + size, block->small};
    tail->prev = block;
    tail->next = block->next;
    if (block->next) block->next->prev = tail;
    block->next = tail;
    block->size = size;
    pool(block->small).insert(tail);
  }

  // Joins `block` with a free neighbour; returns the surviving block.
  Block* merge(Block* block, Block* neighbour) {
    if (!neighbour || !neighbour->free || neighbour->pool != block->pool) return block;
    pool(neighbour->small).erase(neighbour);
    Block* first = neighbour == block->prev ? neighbour : block;
    Block* second = first == block ? neighbour : block;
    first->size += second->size;
    first->next = second->next;
    if (second->next) second->next->prev = first;
    delete second;
    return first;
  }

  void release_free_segments() {
    for (bool small : {true, false}) {
      auto& p = pool(small);
      for (auto it = p.begin(); it != p.end();) {
        Block* b = *it;
        if (b->prev || b->next || b->pool != 0) {
          ++it;
          continue;
        }
        cuda::DeviceGuard guard(device_);
        cudaFree(b->ptr);
        reserved_ -= static_cast<int64_t>(b->size);
        it = p.erase(it);
        delete b;
      }
    }
  }

  int device_;
  std::mutex mutex_;
  std::set<Block*, BySizeThenAddress> small_free_, large_free_;
  std::unordered_map<void*, Block*> live_;
  MemoryCounters counters_;
  int64_t reserved_ = 0;
  int active_pool_ = 0, next_pool_ = 1;
  std::set<int> retired_;
};

DevicePool& pool_of(int device) {
  static std::array<std::unique_ptr<DevicePool>, kMaxDevices> pools;
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  int n = cuda_device_count();
  PONDER_CHECK(device >= 0 && device < n, DeviceError, "cuda:", device, " does not exist (", n,
               " CUDA device(s) visible)");
  if (!pools[device]) pools[device] = std::make_unique<DevicePool>(device);
  return *pools[device];
}

}  // namespace

void* cuda_allocate(int device, size_t nbytes) {
  if (nbytes == 0) {
    pool_of(device);  // still validates the device
    return nullptr;
  }
  return pool_of(device).allocate(nbytes);
}

void cuda_free(int device, void* ptr, size_t) {
  if (ptr) pool_of(device).release(ptr);
}

MemoryStats cuda_memory_stats(int device) { return pool_of(device).stats(); }

int64_t cuda_available_memory(int device) {
  const MemoryStats pool = pool_of(device).stats();
  cuda::DeviceGuard guard(device);
  size_t free = 0, total = 0;
  cuda::check(cudaMemGetInfo(&free, &total), "cudaMemGetInfo");
  return static_cast<int64_t>(free) + pool.reserved_bytes - pool.current_bytes;
}
void cuda_reset_peak_memory(int device) { pool_of(device).reset_peak(); }
void cuda_begin_memory_census(int device) { pool_of(device).counters().begin_census(); }
MemoryCensus cuda_end_memory_census(int device) { return pool_of(device).counters().end_census(); }
void cuda_empty_cache(int device) { pool_of(device).empty_cache(); }
int cuda_new_private_pool(int device) { return pool_of(device).new_private_pool(); }
int cuda_use_pool(int device, int pool) { return pool_of(device).use_pool(pool); }
void cuda_retire_private_pool(int device, int pool) { pool_of(device).retire_private_pool(pool); }
void cuda_poison_allocations(bool on) { poison_allocations.store(on); }

void cuda_copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes) {
  if (nbytes == 0) return;
  const int device = dst_device.is_cuda() ? dst_device.index : src_device.index;
  cuda::DeviceGuard guard(device);
  cuda::Stream stream = cuda::compute_stream(device);
  // Queued behind the kernels that produce or consume the data; a copy to the host waits for it.
  cuda::check(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDefault, stream), "cudaMemcpyAsync");
  if (dst_device.is_cpu() || (src_device.is_cuda() && dst_device.is_cuda() && src_device != dst_device)) {
    cuda::check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  }
}

}  // namespace ponder
