// Linked instead of cuda_memory.cpp when ponder is built without CUDA.
#include "tensor/cuda_graph.h"
#include "tensor/cuda_memory.h"
#include "tensor/error.h"

namespace ponder {

namespace {
[[noreturn]] void no_cuda() {
  fail<DeviceError>("this build of ponder has no CUDA support (configure with -DPONDER_CUDA=ON "
                    "on a machine with the CUDA toolkit)");
}
}  // namespace

void* cuda_allocate(int, size_t) { no_cuda(); }
void cuda_free(int, void*, size_t) {}
MemoryStats cuda_memory_stats(int) { return {}; }
int64_t cuda_available_memory(int) { no_cuda(); }
void cuda_reset_peak_memory(int) {}
void cuda_begin_memory_census(int) {}
MemoryCensus cuda_end_memory_census(int) { return {}; }
void cuda_empty_cache(int) {}
void cuda_poison_allocations(bool) {}
int cuda_device_count() { return 0; }
void cuda_copy_bytes(void*, Device, const void*, Device, size_t) { no_cuda(); }

namespace cuda {
MemoryPool::MemoryPool(int) { no_cuda(); }
MemoryPool::~MemoryPool() = default;
MemoryPool::Use::Use(const MemoryPool&) { no_cuda(); }
MemoryPool::Use::~Use() = default;
struct Graph::Impl {};
std::unique_ptr<Graph> Graph::record(int, const std::function<void()>&) { no_cuda(); }
Graph::Graph(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Graph::~Graph() = default;
void Graph::replay() { no_cuda(); }
}  // namespace cuda

}  // namespace ponder
