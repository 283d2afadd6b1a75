// Data-parallel gradient synchronisation overlapped with backward. The flat fp32 gradient buffer
// is cut into buckets of about bucket_bytes, in the reverse order of the parameters (the order
// backward reaches them). While armed, a post-accumulate hook on each parameter marks it done; a
// bucket whose parameters are all done is summed across ranks asynchronously at once, while
// backward goes on. Buckets are launched strictly in order, so every rank issues the same
// collectives in the same sequence whatever order its hooks fire in.
#pragma once

#include <memory>

#include "dist/communicator.h"
#include "optim/grad_buffer.h"

namespace ponder::dist {

class GradSync {
 public:
  GradSync(const optim::GradBuffer& grads, Communicator& comm, int64_t bucket_bytes);
  ~GradSync();

  // Reduce during the coming backward (the last micro-step of an accumulation).
  void arm();
  // Launches the buckets backward left incomplete (parameters it did not reach), waits for every
  // bucket and disarms. Returns the seconds spent waiting: communication not hidden by backward.
  double finish();

  int64_t buckets() const;

 private:
  struct State;
  std::shared_ptr<State> state_;  // shared with the hooks, which outlive nothing they touch
};

}  // namespace ponder::dist
