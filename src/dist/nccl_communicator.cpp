#include "dist/nccl_communicator.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <cstring>
#include <thread>

#include "backend/kernels.h"
#include "tensor/cuda_context.h"

namespace ponder::dist {
namespace {

void check_nccl(ncclResult_t status, const char* what) {
  PONDER_CHECK(status == ncclSuccess || status == ncclInProgress, CommError, what, ": ", ncclGetErrorString(status));
}

ncclDataType_t nccl_type(const char* op, const Tensor& t) {
  switch (t.dtype()) {
    case DType::f32: return ncclFloat32;
    case DType::f64: return ncclFloat64;
    case DType::bf16: return ncclBfloat16;
    case DType::i32: return ncclInt32;
    case DType::i64: return ncclInt64;
    default: fail<DTypeError>(op, ": NCCL reduces f32, f64, bf16, i32 and i64 tensors, not ", dtype_name(t.dtype()));
  }
  return ncclFloat32;
}

ncclRedOp_t nccl_op(ReduceOp op) { return op == ReduceOp::avg ? ncclAvg : ncclSum; }

}  // namespace

struct NcclCommunicator::Impl {
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;  // communication stream
  int device = 0;
  std::chrono::seconds timeout{0};
  bool aborted = false;

  // Orders the collective after the compute stream's queued work (the gradients it reads).
  void follow_compute() {
    cudaEvent_t ready;
    cuda::check(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming), "cudaEventCreate");
    cuda::check(cudaEventRecord(ready, cuda::compute_stream(device)), "cudaEventRecord");
    cuda::check(cudaStreamWaitEvent(stream, ready, 0), "cudaStreamWaitEvent");
    cuda::check(cudaEventDestroy(ready), "cudaEventDestroy");
  }

  void abort(const char* what, const std::string& why) {
    if (!aborted) ncclCommAbort(comm);
    aborted = true;
    fail<CommError>(what, ": ", why);
  }
};

namespace {

class NcclWork : public Work {
 public:
  NcclWork(std::shared_ptr<NcclCommunicator::Impl> impl, const char* op) : impl_(std::move(impl)), op_(op) {
    cuda::check(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming), "cudaEventCreate");
    cuda::check(cudaEventRecord(done_, impl_->stream), "cudaEventRecord");
  }
  ~NcclWork() override { cudaEventDestroy(done_); }

  void wait() override {
    const auto deadline = std::chrono::steady_clock::now() + impl_->timeout;
    while (true) {
      const cudaError_t s = cudaEventQuery(done_);
      if (s == cudaSuccess) break;
      PONDER_CHECK(s == cudaErrorNotReady, CommError, op_, ": ", cudaGetErrorString(s));
      ncclResult_t async = ncclSuccess;
      ncclCommGetAsyncError(impl_->comm, &async);
      if (async != ncclSuccess && async != ncclInProgress) impl_->abort(op_, ncclGetErrorString(async));
      if (std::chrono::steady_clock::now() > deadline)
        impl_->abort(op_, "no answer from the other ranks within " + std::to_string(impl_->timeout.count()) +
                              " s (a rank failed or hangs); stopping");
      std::this_thread::yield();
    }
    // Later compute reads the result: order it after the collective on the device as well.
    cuda::check(cudaStreamWaitEvent(cuda::compute_stream(impl_->device), done_, 0), "cudaStreamWaitEvent");
  }

 private:
  std::shared_ptr<NcclCommunicator::Impl> impl_;
  const char* op_;
  cudaEvent_t done_ = nullptr;
};

}  // namespace

NcclId make_nccl_id() {
  ncclUniqueId id;
  check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
  NcclId out;
  static_assert(sizeof(id) == sizeof(out));
  std::memcpy(out.data(), &id, sizeof(id));
  return out;
}

NcclCommunicator::NcclCommunicator(int rank, int world_size, const NcclId& id, int device, std::chrono::seconds timeout)
    : impl_(std::make_shared<Impl>()), rank_(rank), world_(world_size), device_(device) {
  cuda::DeviceGuard guard(device);
  impl_->device = device;
  impl_->timeout = timeout;
  ncclUniqueId nid;
  std::memcpy(&nid, id.data(), sizeof(nid));
  check_nccl(ncclCommInitRank(&impl_->comm, world_size, nid, rank), "ncclCommInitRank");
  cuda::check(cudaStreamCreateWithFlags(&impl_->stream, cudaStreamNonBlocking), "cudaStreamCreate");
}

NcclCommunicator::~NcclCommunicator() {
  cuda::DeviceGuard guard(device_);
  if (!impl_->aborted) ncclCommDestroy(impl_->comm);
  cudaStreamDestroy(impl_->stream);
}

WorkHandle NcclCommunicator::all_reduce_async(const Tensor& t, ReduceOp op) {
  check_collective("all_reduce", t, device());
  cuda::DeviceGuard guard(device_);
  impl_->follow_compute();
  check_nccl(ncclAllReduce(t.data_ptr(), t.data_ptr(), size_t(t.numel()), nccl_type("all_reduce", t), nccl_op(op),
                           impl_->comm, impl_->stream),
             "all_reduce");
  return std::make_unique<NcclWork>(impl_, "all_reduce");
}

WorkHandle NcclCommunicator::reduce_scatter_async(const Tensor& input, const Tensor& out, ReduceOp op) {
  check_collective("reduce_scatter", input, device());
  check_collective("reduce_scatter", out, device());
  PONDER_CHECK(out.numel() * world_ == input.numel() && out.dtype() == input.dtype(), ShapeError, "reduce_scatter: output of ",
               out.numel(), " elements is not 1/", world_, " of the input's ", input.numel());
  cuda::DeviceGuard guard(device_);
  impl_->follow_compute();
  check_nccl(ncclReduceScatter(input.data_ptr(), out.data_ptr(), size_t(out.numel()), nccl_type("reduce_scatter", input),
                               nccl_op(op), impl_->comm, impl_->stream),
             "reduce_scatter");
  return std::make_unique<NcclWork>(impl_, "reduce_scatter");
}

WorkHandle NcclCommunicator::all_gather_async(const Tensor& input, const Tensor& out) {
  check_collective("all_gather", input, device());
  check_collective("all_gather", out, device());
  PONDER_CHECK(input.numel() * world_ == out.numel() && out.dtype() == input.dtype(), ShapeError, "all_gather: output of ",
               out.numel(), " elements is not ", world_, " × the input's ", input.numel());
  cuda::DeviceGuard guard(device_);
  impl_->follow_compute();
  check_nccl(ncclAllGather(input.data_ptr(), out.data_ptr(), size_t(input.numel()), nccl_type("all_gather", input), impl_->comm,
                           impl_->stream),
             "all_gather");
  return std::make_unique<NcclWork>(impl_, "all_gather");
}

WorkHandle NcclCommunicator::broadcast_async(const Tensor& t, int root) {
  check_collective("broadcast", t, device());
  PONDER_CHECK(root >= 0 && root < world_, ValueError, "broadcast: root ", root, " is not a rank of ", world_);
  cuda::DeviceGuard guard(device_);
  impl_->follow_compute();
  check_nccl(ncclBroadcast(t.data_ptr(), t.data_ptr(), size_t(t.numel()), nccl_type("broadcast", t), root, impl_->comm,
                           impl_->stream),
             "broadcast");
  return std::make_unique<NcclWork>(impl_, "broadcast");
}

void NcclCommunicator::barrier() {
  // NCCL has no barrier: a one-element all-reduce that every rank must join serves as one.
  Tensor token = Tensor::empty({1}, {DType::f32, device()});
  backend::fill(token, 0.0);
  all_reduce(token);
}

}  // namespace ponder::dist
