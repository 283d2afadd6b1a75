#include "gpu/twin.h"

#include <cmath>

#include "support/test_util.h"

namespace ponder::testing {
namespace {

// One device copy per distinct input: an input passed twice is one tensor on both sides, so its
// gradient sums both uses on both sides.
TensorList device_copies(const TensorList& inputs) {
  TensorList out;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    size_t first = i;
    for (size_t j = 0; j < i; ++j)
      if (t.defined() && inputs[j].is_same(t)) first = j;
    if (first != i || !t.defined()) {
      out.push_back(t.defined() ? out[first] : t);
      continue;
    }
    Tensor d = t.detach().to(Device::cuda(0));
    if (t.requires_grad()) d.set_requires_grad(true);
    out.push_back(d);
  }
  return out;
}

// Relative error that also fails on NaN (poisoned, unwritten elements).
::testing::AssertionResult close(const char* what, const Tensor& cuda, const Tensor& cpu, double tolerance) {
  if (cuda.shape() != cpu.shape()) return ::testing::AssertionFailure() << what << ": shapes differ";
  double err = relative_error(cuda.to(Device::cpu()).to(DType::f64), cpu.to(DType::f64));
  if (std::isnan(err) || err > tolerance) {
    return ::testing::AssertionFailure() << what << ": relative error " << err << " > " << tolerance;
  }
  return ::testing::AssertionSuccess();
}

}  // namespace

::testing::AssertionResult cuda_matches_cpu(const std::function<Tensor(const TensorList&)>& fn,
                                            const TensorList& inputs, double tolerance) {
  // Inputs are reused across checks: start every CPU gradient afresh.
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) t.set_grad({});
  TensorList dev = device_copies(inputs);
  Tensor out_cpu = fn(inputs), out_dev = fn(dev);
  if (!out_dev.is_cuda()) return ::testing::AssertionFailure() << "output is not on the GPU";
  if (auto r = close("output", out_dev, out_cpu, tolerance); !r) return r;
  if (!out_cpu.requires_grad()) return ::testing::AssertionSuccess();
  Tensor weight = random_tensor(out_cpu.shape(), 99, out_cpu.dtype());
  out_cpu.backward(weight);
  out_dev.backward(weight.to(Device::cuda(0)));
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined() || !inputs[i].requires_grad()) continue;
    std::string what = "gradient of input " + std::to_string(i);
    if (!dev[i].grad().defined()) return ::testing::AssertionFailure() << what << " missing on the GPU";
    if (auto r = close(what.c_str(), dev[i].grad(), inputs[i].grad(), tolerance); !r) return r;
  }
  return ::testing::AssertionSuccess();
}

}  // namespace ponder::testing
