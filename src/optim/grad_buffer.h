// One flat, zeroed gradient buffer for a set of parameters. Each parameter's .grad becomes a view
// into it, so autograd accumulates micro-batches there (converting bf16 gradients to the buffer's
// fp32), and data-parallel code can all-reduce every gradient at once through flat().
//
// Create it once the parameters have their final dtype and device; it keeps them by handle. With a buffer
// every parameter always has a gradient (zero when backward did not reach it), so optimizers update
// it (weight decay, momentum) rather than skip it, as torch does with zero_grad(set_to_none=False).
#pragma once

#include "tensor/tensor.h"

namespace ponder::optim {

// Where each parameter's gradient lives in the flat buffer.
struct FlatLayout {
  TensorList params;             // those that require grad, in order
  std::vector<int64_t> offsets;  // where each one's view starts (a multiple of kAlignment)
  int64_t numel = 0;             // the buffer's length
};

class GradBuffer {
 public:
  // Parameters that require grad get a view (frozen ones are left out), back to back in order
  // (packed_layout). A gradient they already have is copied in. All parameters must be on one device.
  explicit GradBuffer(const TensorList& params, DType dtype = DType::f32);
  // The views where `layout` puts them (data-parallel code lays gradients out for its
  // collectives); the gaps stay zero.
  explicit GradBuffer(FlatLayout layout, DType dtype = DType::f32);

  // The default layout of `params`: those that require grad, back to back, each view aligned.
  static FlatLayout packed_layout(const TensorList& params);

  // Every gradient; views start at multiples of kAlignment elements, the gaps stay zero.
  const Tensor& flat() const { return flat_; }
  const TensorList& params() const { return params_; }
  // params()[i].grad() as attached: a view of flat().
  const Tensor& view(size_t i) const { return views_.at(i); }
  // Fills the buffer with zeros and gives every parameter its view back (Module::zero_grad or
  // set_grad may have replaced it).
  void zero();

  // Alignment of each view, in elements (64 bytes of fp32 for vector loads).
  static constexpr int64_t kAlignment = 16;
  // n rounded up to a multiple of kAlignment: the room a view of n elements takes.
  static int64_t aligned(int64_t n) { return (n + kAlignment - 1) / kAlignment * kAlignment; }

 private:
  void attach() const;

  TensorList params_;
  TensorList views_;
  Tensor flat_;
};

}  // namespace ponder::optim
