#include "dist/grad_sync.h"

#include <chrono>

namespace ponder::dist {

struct GradSync::State {
  struct Bucket {
    int64_t begin = 0, end = 0;  // range of the flat buffer
    int64_t params = 0, done = 0;
    WorkHandle work;
  };

  Communicator* comm = nullptr;
  Tensor flat;
  std::vector<Bucket> buckets;          // in launch order
  std::vector<int64_t> bucket_of;       // per parameter
  std::vector<bool> param_done;
  std::vector<std::string> names;       // for errors
  size_t next_launch = 0;
  bool armed = false;

  void launch_ready() {
    while (next_launch < buckets.size() && buckets[next_launch].done == buckets[next_launch].params) {
      Bucket& b = buckets[next_launch++];
      b.work = comm->all_reduce_async(flat.narrow(0, b.begin, b.end - b.begin), ReduceOp::sum);
    }
  }

  void on_accumulated(size_t param) {
    if (!armed) return;
    Bucket& b = buckets[bucket_of[param]];
    PONDER_CHECK(!b.work, AutogradError, "gradient synchronisation: the gradient of ", names[param],
                 " grew after its bucket was sent; a model that back-propagates twice per micro-step cannot overlap");
    if (param_done[param]) return;
    param_done[param] = true;
    ++b.done;
    launch_ready();
  }
};

GradSync::GradSync(const optim::GradBuffer& grads, Communicator& comm, int64_t bucket_bytes)
    : state_(std::make_shared<State>()) {
  State& s = *state_;
  s.comm = &comm;
  s.flat = grads.flat();
  const TensorList& params = grads.params();
  const int64_t n = int64_t(params.size());
  s.bucket_of.assign(params.size(), 0);
  s.param_done.assign(params.size(), false);
  const int64_t elem = int64_t(element_size(s.flat.dtype()));
  // Backward meets the last parameters first: buckets are filled from the end of the buffer.
  for (int64_t i = n - 1; i >= 0; --i) {
    if (s.buckets.empty() || (s.buckets.back().end - s.buckets.back().begin) * elem >= bucket_bytes) {
      const int64_t end = s.buckets.empty() ? s.flat.numel() : s.buckets.back().begin;
      s.buckets.push_back({.begin = end, .end = end});
    }
    State::Bucket& b = s.buckets.back();
    b.begin = grads.view(size_t(i)).offset() - s.flat.offset();
    ++b.params;
    s.bucket_of[size_t(i)] = int64_t(s.buckets.size()) - 1;
  }
  for (size_t i = 0; i < params.size(); ++i) {
    s.names.push_back(describe(params[i]));
    std::weak_ptr<State> weak = state_;
    params[i].register_post_accumulate_hook([weak, i](Tensor&) {
      if (auto state = weak.lock()) state->on_accumulated(i);
    });
  }
}

GradSync::~GradSync() = default;

void GradSync::arm() { state_->armed = true; }

double GradSync::finish() {
  State& s = *state_;
  for (State::Bucket& b : s.buckets) b.done = b.params;
  s.launch_ready();
  const auto start = std::chrono::steady_clock::now();
  for (State::Bucket& b : s.buckets) {
    b.work->wait();
    b.work.reset();
    b.done = 0;
  }
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  s.param_done.assign(s.param_done.size(), false);
  s.next_launch = 0;
  s.armed = false;
  s.flat.bump_version();
  return waited;
}

int64_t GradSync::buckets() const { return int64_t(state_->buckets.size()); }

}  // namespace ponder::dist
