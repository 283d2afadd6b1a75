// Runs the tape backwards.
#pragma once

#include "tensor/tensor.h"

namespace ponder::autograd {

// Back-propagates from `roots` (each with its upstream gradient; an undefined gradient means 1
// and requires a one-element root) and accumulates into the .grad of every leaf reached.
// Without retain_graph, each node frees its saved tensors as soon as it has run.
void backward(const TensorList& roots, const TensorList& root_grads = {}, bool retain_graph = false);

// Vector-Jacobian product: the gradients of `outputs` (weighted by `grad_outputs`) with respect
// to `inputs`, returned instead of accumulated. Only the part of the graph between them runs.
// With retain_graph the same graph can be differentiated again with other grad_outputs.
// An input the outputs do not depend on gets an undefined gradient if allow_unused, else an
// error.
TensorList grad(const TensorList& outputs, const TensorList& inputs,
                const TensorList& grad_outputs = {}, bool retain_graph = false,
                bool allow_unused = false);

// Whether the innermost backward() or grad() running on this thread is a grad(), whose nodes must
// not accumulate into any .grad; false outside both. For functions that run autograd themselves.
bool inside_grad();

}  // namespace ponder::autograd
