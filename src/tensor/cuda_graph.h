// CUDA graphs: the kernels and copies that some host code queues on a device's compute stream,
// recorded once and then replayed with one launch, which saves the host the per-kernel launch
// cost and keeps the GPU from waiting on it. A replay repeats the recorded work exactly: the same
// kernels with the same arguments on the same addresses. So the recorded code must queue no host
// synchronisation (a read-back to the host fails the recording), inputs that change go into
// buffers made before recording and rewritten before each replay, and what the work allocates
// must come from a MemoryPool that outlives the graph, whose memory nothing else gets meanwhile.
// Without CUDA support, recording fails with a DeviceError.
#pragma once

#include <functional>
#include <memory>

namespace ponder::cuda {

// A private pool of device memory (tensor/cuda_memory.h). While a Use is alive, the device's
// allocations come from the pool; the pool's memory goes back to the shared pool when it is
// destroyed. Several graphs may share one pool when their replays never overlap: a replay writes
// its temporaries into blocks the pool may since have handed to buffers made for other graphs, so
// what must survive another graph's replay (inputs) is allocated outside the pool, and what a
// replay leaves (its outputs) is read before another graph replays.
class MemoryPool {
 public:
  explicit MemoryPool(int device);
  ~MemoryPool();
  MemoryPool(const MemoryPool&) = delete;
  MemoryPool& operator=(const MemoryPool&) = delete;

  class Use {
   public:
    explicit Use(const MemoryPool& pool);
    ~Use();
    Use(const Use&) = delete;
    Use& operator=(const Use&) = delete;

   private:
    int device_, previous_;
  };

 private:
  int device_, id_;
};

class Graph {
 public:
  // Records what `work` queues on the compute stream of `device` (nothing runs). If `work` throws
  // or queues something a graph cannot hold, the recording is abandoned and the error rethrown
  // (a DeviceError naming the CUDA error when CUDA refused).
  static std::unique_ptr<Graph> record(int device, const std::function<void()>& work);
  ~Graph();
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  // Queues the recorded work on the compute stream.
  void replay();

 private:
  struct Impl;
  explicit Graph(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ponder::cuda
