#include "dist/mpi_communicator.h"

#include <mpi.h>

#include <string>
#include <thread>

namespace ponder::dist {
namespace {

// Reductions need MPI's arithmetic; copies (broadcast, all_gather) also move bf16 as raw 16 bits.
MPI_Datatype mpi_type(const char* op, const Tensor& t, bool reduces = true) {
  switch (t.dtype()) {
    case DType::f32: return MPI_FLOAT;
    case DType::f64: return MPI_DOUBLE;
    case DType::i32: return MPI_INT32_T;
    case DType::i64: return MPI_INT64_T;
    case DType::bf16:
      if (!reduces) return MPI_UINT16_T;
      [[fallthrough]];
    default: fail<DTypeError>(op, ": MPI reduces f32, f64, i32 and i64 tensors, not ", dtype_name(t.dtype()));
  }
  return MPI_DATATYPE_NULL;
}

void check_mpi(int status, const char* what) {
  if (status == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(status, text, &len);
  fail<CommError>(what, ": ", std::string(text, len));
}

template <class T>
void divide(const Tensor& t, int world) {
  T* p = t.data<T>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] /= T(world);
}

// An MPI request, polled until done or the deadline passes; avg divides by the world size after.
class MpiWork : public Work {
 public:
  MpiWork(MPI_Request request, const char* op, std::chrono::seconds timeout, Tensor average = {}, int world = 1)
      : request_(request), op_(op), timeout_(timeout), average_(std::move(average)), world_(world) {}

  void wait() override {
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    int finished = 0;
    while (true) {
      check_mpi(MPI_Test(&request_, &finished, MPI_STATUS_IGNORE), op_);
      if (finished) break;
      PONDER_CHECK(std::chrono::steady_clock::now() < deadline, CommError, op_, ": no answer from the other ranks within ",
                   timeout_.count(), " s (a rank failed or hangs); stopping");
      std::this_thread::yield();
    }
    if (!average_.defined()) return;
    if (average_.dtype() == DType::f64) {
      divide<double>(average_, world_);
    } else {
      PONDER_CHECK(average_.dtype() == DType::f32, DTypeError, op_, ": avg needs a floating tensor");
      divide<float>(average_, world_);
    }
  }

 private:
  MPI_Request request_;
  const char* op_;
  std::chrono::seconds timeout_;
  Tensor average_;
  int world_;
};

}  // namespace

MpiCommunicator::MpiCommunicator(std::chrono::seconds timeout) : timeout_(timeout) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    check_mpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init");
    owns_mpi_ = true;
  }
  // Errors come back as codes (and become CommError) instead of aborting the job.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &world_);
}

MpiCommunicator::~MpiCommunicator() {
  if (owns_mpi_) MPI_Finalize();
}

WorkHandle MpiCommunicator::all_reduce_async(const Tensor& t, ReduceOp op) {
  check_collective("all_reduce", t, device());
  MPI_Request r;
  check_mpi(MPI_Iallreduce(MPI_IN_PLACE, t.data_ptr(), int(t.numel()), mpi_type("all_reduce", t), MPI_SUM, MPI_COMM_WORLD, &r),
            "all_reduce");
  return std::make_unique<MpiWork>(r, "all_reduce", timeout_, op == ReduceOp::avg ? t : Tensor(), world_);
}

WorkHandle MpiCommunicator::reduce_scatter_async(const Tensor& input, const Tensor& out, ReduceOp op) {
  check_collective("reduce_scatter", input, device());
  check_collective("reduce_scatter", out, device());
  PONDER_CHECK(out.numel() * world_ == input.numel() && out.dtype() == input.dtype(), ShapeError, "reduce_scatter: output of ",
               out.numel(), " elements is not 1/", world_, " of the input's ", input.numel());
  MPI_Request r;
  check_mpi(MPI_Ireduce_scatter_block(input.data_ptr(), out.data_ptr(), int(out.numel()), mpi_type("reduce_scatter", input),
                                      MPI_SUM, MPI_COMM_WORLD, &r),
            "reduce_scatter");
  return std::make_unique<MpiWork>(r, "reduce_scatter", timeout_, op == ReduceOp::avg ? out : Tensor(), world_);
}

WorkHandle MpiCommunicator::all_gather_async(const Tensor& input, const Tensor& out) {
  check_collective("all_gather", input, device());
  check_collective("all_gather", out, device());
  PONDER_CHECK(input.numel() * world_ == out.numel() && out.dtype() == input.dtype(), ShapeError, "all_gather: output of ",
               out.numel(), " elements is not ", world_, " × the input's ", input.numel());
  MPI_Datatype type = mpi_type("all_gather", input, /*reduces=*/false);
  MPI_Request r;
  check_mpi(MPI_Iallgather(input.data_ptr(), int(input.numel()), type, out.data_ptr(), int(input.numel()), type, MPI_COMM_WORLD, &r),
            "all_gather");
  return std::make_unique<MpiWork>(r, "all_gather", timeout_);
}

WorkHandle MpiCommunicator::broadcast_async(const Tensor& t, int root) {
  check_collective("broadcast", t, device());
  PONDER_CHECK(root >= 0 && root < world_, ValueError, "broadcast: root ", root, " is not a rank of ", world_);
  MPI_Request r;
  check_mpi(MPI_Ibcast(t.data_ptr(), int(t.numel()), mpi_type("broadcast", t, /*reduces=*/false), root, MPI_COMM_WORLD, &r), "broadcast");
  return std::make_unique<MpiWork>(r, "broadcast", timeout_);
}

void MpiCommunicator::barrier() {
  MPI_Request r;
  check_mpi(MPI_Ibarrier(MPI_COMM_WORLD, &r), "barrier");
  MpiWork(r, "barrier", timeout_).wait();
}

}  // namespace ponder::dist
