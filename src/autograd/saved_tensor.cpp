#include "autograd/saved_tensor.h"

#include <algorithm>
#include <vector>

#include "autograd/grad_mode.h"

namespace ponder::autograd {

struct SavedTensor::Remake {
  std::shared_ptr<const std::function<Tensor()>> make;
  Shape made_shape;  // what make() returns, contiguous
  Shape shape;
  Strides strides;
  int64_t offset = 0;  // elements past the first of the recomputable tensor
};

namespace {

struct Recomputable {
  const StorageImpl* storage;
  Shape shape;
  int64_t offset;  // of the tensor's first element in its storage
  std::shared_ptr<const std::function<Tensor()>> make;
};

// The live RecomputedWhenSaved guards of this thread, innermost last.
std::vector<Recomputable>& recomputables() {
  thread_local std::vector<Recomputable> live;
  return live;
}

const Recomputable* recomputable_of(const Tensor& t) {
  const auto& live = recomputables();
  for (auto it = live.rbegin(); it != live.rend(); ++it)
    if (it->storage == t.storage().get()) return &*it;
  return nullptr;
}

}  // namespace

SavedTensor::SavedTensor(const Tensor& t) {
  if (!t.defined()) return;
  if (const Recomputable* r = recomputable_of(t)) {
    remake_ = std::make_shared<const Remake>(Remake{r->make, r->shape, t.shape(), t.strides(), t.offset() - r->offset});
    return;
  }
  data_ = t.detach();
  version_ = t.version();
}

const Tensor& SavedTensor::get(const char* op) const {
  if (remake_ && !data_.defined()) {
    NoGrad no_grad;
    const Tensor made = (*remake_->make)();
    PONDER_CHECK(made.shape() == remake_->made_shape && made.is_contiguous(), AutogradError, op,
                 ": a recomputed tensor came back as ", describe(made), " instead of a contiguous ",
                 remake_->made_shape.str());
    data_ = made.as_strided(remake_->shape, remake_->strides, made.offset() + remake_->offset);
    version_ = data_.version();
  }
  PONDER_CHECK(!data_.defined() || data_.version() == version_, AutogradError, op,
               ": a tensor saved for backward was modified in place after it was saved "
               "(version ", version_, " -> ", data_.version(), ")");
  return data_;
}

RecomputedWhenSaved::RecomputedWhenSaved(const Tensor& t, std::function<Tensor()> make) : t_(t) {
  PONDER_CHECK(t.is_contiguous(), ValueError, "RecomputedWhenSaved: the tensor must be contiguous");
  auto shared = std::make_shared<const std::function<Tensor()>>(std::move(make));
  recomputables().push_back({t.storage().get(), t.shape(), t.offset(), std::move(shared)});
}

RecomputedWhenSaved::~RecomputedWhenSaved() {
  auto& live = recomputables();
  const StorageImpl* storage = t_.storage().get();
  const auto it = std::find_if(live.rbegin(), live.rend(), [&](const Recomputable& r) { return r.storage == storage; });
  if (it != live.rend()) live.erase(std::next(it).base());
}

}  // namespace ponder::autograd
