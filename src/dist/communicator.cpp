#include "dist/communicator.h"

#include <cstdlib>

#include "backend/kernels.h"

namespace ponder::dist {
namespace {

class Done : public Work {
 public:
  void wait() override {}
};

}  // namespace

WorkHandle done() { return std::make_unique<Done>(); }

void check_collective(const char* op, const Tensor& t, Device device) {
  PONDER_CHECK(t.defined() && t.is_contiguous(), ValueError, op, ": needs a contiguous tensor");
  PONDER_CHECK(t.device() == device, DeviceError, op, ": tensor on ", t.device(), " but the communicator serves ", device);
}

WorkHandle LocalCommunicator::all_reduce_async(const Tensor& t, ReduceOp) {
  check_collective("all_reduce", t, device_);
  return done();
}

WorkHandle LocalCommunicator::reduce_scatter_async(const Tensor& input, const Tensor& out, ReduceOp) {
  PONDER_CHECK(input.numel() == out.numel(), ShapeError, "reduce_scatter: output has ", out.numel(), " elements, expected ",
               input.numel(), " (one rank)");
  backend::copy(out, input);
  return done();
}

WorkHandle LocalCommunicator::all_gather_async(const Tensor& input, const Tensor& out) {
  PONDER_CHECK(input.numel() == out.numel(), ShapeError, "all_gather: output has ", out.numel(), " elements, expected ",
               input.numel());
  backend::copy(out, input);
  return done();
}

WorkHandle LocalCommunicator::broadcast_async(const Tensor& t, int root) {
  PONDER_CHECK(root == 0, ValueError, "broadcast: root ", root, " is not a rank of a one-process job");
  return done();
}

std::chrono::seconds comm_timeout() {
  const char* s = std::getenv("PONDER_COMM_TIMEOUT_S");
  if (s == nullptr) return std::chrono::seconds(1800);
  char* end = nullptr;
  const long v = std::strtol(s, &end, 10);
  PONDER_CHECK(end != s && *end == '\0' && v > 0, ValueError,
               "PONDER_COMM_TIMEOUT_S: expected a positive number of seconds, got \"", s, "\"");
  return std::chrono::seconds(v);
}

bool any_rank(Communicator& comm, bool value) {
  if (comm.world_size() == 1) return value;
  Tensor flag = Tensor::empty({1}, {DType::f64, comm.device()});
  backend::fill(flag, value ? 1.0 : 0.0);
  comm.all_reduce(flag);
  return flag.item<double>() > 0;
}

}  // namespace ponder::dist
