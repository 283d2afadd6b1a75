#include "tensor/cuda_graph.h"

#include <cuda_runtime.h>

#include "tensor/cuda_context.h"
#include "tensor/cuda_memory.h"
#include "tensor/error.h"

namespace ponder::cuda {

MemoryPool::MemoryPool(int device) : device_(device), id_(cuda_new_private_pool(device)) {}
// Work still queued that uses the pool's memory runs before anything later handed that memory.
MemoryPool::~MemoryPool() { cuda_retire_private_pool(device_, id_); }

MemoryPool::Use::Use(const MemoryPool& pool) : device_(pool.device_), previous_(cuda_use_pool(pool.device_, pool.id_)) {}
MemoryPool::Use::~Use() { cuda_use_pool(device_, previous_); }

struct Graph::Impl {
  int device = 0;
  cudaGraphExec_t exec = nullptr;
};

namespace {

// Takes the stream out of capture mode on every path, discarding the graph unless finish() took it.
class Capture {
 public:
  explicit Capture(int device) : stream_(compute_stream(device)) {
    // Relaxed: allocations made while recording may still call cudaMalloc (which queues nothing).
    check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeRelaxed), "cudaStreamBeginCapture");
  }
  ~Capture() {
    if (finished_) return;
    cudaGraph_t graph = nullptr;
    cudaStreamEndCapture(stream_, &graph);
    if (graph) cudaGraphDestroy(graph);
    cudaGetLastError();  // the capture's own error is the one being reported
  }
  Capture(const Capture&) = delete;
  Capture& operator=(const Capture&) = delete;

  cudaGraphExec_t finish() {
    finished_ = true;
    cudaGraph_t graph = nullptr;
    check(cudaStreamEndCapture(stream_, &graph),
          "cudaStreamEndCapture (the recorded work queued something a CUDA graph cannot hold)");
    cudaGraphExec_t exec = nullptr;
    const cudaError_t made = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    check(made, "cudaGraphInstantiate");
    return exec;
  }

 private:
  Stream stream_;
  bool finished_ = false;
};

}  // namespace

std::unique_ptr<Graph> Graph::record(int device, const std::function<void()>& work) {
  DeviceGuard guard(device);
  auto impl = std::make_unique<Impl>();
  impl->device = device;
  Capture capture(device);
  work();
  impl->exec = capture.finish();
  return std::unique_ptr<Graph>(new Graph(std::move(impl)));
}

Graph::Graph(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

// A replay still in flight completes first: CUDA frees the executable graph after it.
Graph::~Graph() { cudaGraphExecDestroy(impl_->exec); }

void Graph::replay() {
  DeviceGuard guard(impl_->device);
  check(cudaGraphLaunch(impl_->exec, compute_stream(impl_->device)), "cudaGraphLaunch");
}

}  // namespace ponder::cuda
