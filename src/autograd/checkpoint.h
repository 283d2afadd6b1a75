// Activation checkpointing: run a region without keeping its activations, and recompute it
// during backward. Random streams used inside the region are rewound for the recomputation so
// dropout masks match.
#pragma once

#include <functional>
#include <vector>

#include "tensor/generator.h"
#include "tensor/tensor.h"

namespace ponder::autograd {

using RegionFn = std::function<TensorList(const TensorList&)>;

TensorList checkpoint(RegionFn fn, const TensorList& inputs,
                      std::vector<Generator*> generators = {});

// While one lives (thread-local), checkpoint() runs its region as plain ops that keep their
// activations. For graphs that autograd::grad differentiates with respect to parameters, e.g. the
// retained graph of implicit differentiation: through a checkpoint, grad() forms the gradients of
// the region's inputs only, never those of the parameters it closes over.
class NoCheckpoint {
 public:
  NoCheckpoint();
  ~NoCheckpoint();
  NoCheckpoint(const NoCheckpoint&) = delete;
  NoCheckpoint& operator=(const NoCheckpoint&) = delete;

 private:
  bool previous_;
};

}  // namespace ponder::autograd
