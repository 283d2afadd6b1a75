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

}  // namespace ponder::autograd
