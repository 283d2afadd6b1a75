#include "support/test_util.h"

#include <cmath>
#include <sstream>
#include <unordered_set>

#include "autograd/node.h"

namespace ponder::testing {

Tensor random_tensor(const Shape& shape, uint64_t seed, DType dtype, bool requires_grad) {
  Generator gen(seed);
  Tensor t = randn(shape, gen, {.dtype = DType::f64});
  if (dtype != DType::f64) t = t.to(dtype);
  if (requires_grad) t.set_requires_grad(true);
  return t;
}

::testing::AssertionResult all_close(const Tensor& actual, const Tensor& expected, double rtol, double atol) {
  if (actual.shape() != expected.shape()) {
    return ::testing::AssertionFailure() << "shapes differ: " << actual.shape() << " vs " << expected.shape();
  }
  std::vector<double> a = actual.to_vector<double>(), e = expected.to_vector<double>();
  double worst = 0;
  size_t at = 0;
  bool ok = true;
  for (size_t i = 0; i < a.size(); ++i) {
    double err = std::abs(a[i] - e[i]);
    bool bad = !(err <= atol + rtol * std::abs(e[i]));  // NaN fails
    if (bad && (ok || err > worst || std::isnan(err))) {
      worst = err;
      at = i;
    }
    ok = ok && !bad;
  }
  if (ok) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "element " << at << ": got " << a[at] << ", expected "
                                       << e[at] << " (|diff| " << worst << ", rtol " << rtol
                                       << ", atol " << atol << ")";
}

double relative_error(const Tensor& actual, const Tensor& expected) {
  std::vector<double> a = actual.to_vector<double>(), e = expected.to_vector<double>();
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - e[i]) * (a[i] - e[i]);
    den += e[i] * e[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-300);
}

namespace {
double weighted_sum(const std::function<Tensor(const TensorList&)>& f, const TensorList& inputs,
                    const Tensor& weight) {
  NoGrad no_grad;
  Tensor out = f(inputs);
  return (out.to(DType::f64) * weight).sum().item<double>();
}
}  // namespace

::testing::AssertionResult gradcheck(const std::function<Tensor(const TensorList&)>& f,
                                     const TensorList& inputs, GradcheckOptions options) {
  TensorList wrt;
  for (const Tensor& x : inputs) {
    if (!x.defined() || !x.requires_grad()) continue;
    if (x.dtype() != DType::f64 || !x.is_contiguous()) {
      return ::testing::AssertionFailure() << "gradcheck needs contiguous f64 inputs, got " << describe(x);
    }
    wrt.push_back(x);
  }
  Tensor out = f(inputs);
  if (!out.requires_grad()) return ::testing::AssertionFailure() << "output does not require grad";
  Tensor weight = random_tensor(out.shape(), options.seed);
  TensorList analytic = autograd::grad({out}, wrt, {weight.to(out.dtype())}, false, true);

  for (size_t k = 0; k < wrt.size(); ++k) {
    double* p = wrt[k].data<double>();
    std::vector<double> a = analytic[k].defined() ? analytic[k].to_vector<double>()
                                                  : std::vector<double>(wrt[k].numel(), 0.0);
    for (int64_t j = 0; j < wrt[k].numel(); ++j) {
      double saved = p[j];
      p[j] = saved + options.eps;
      double plus = weighted_sum(f, inputs, weight);
      p[j] = saved - options.eps;
      double minus = weighted_sum(f, inputs, weight);
      p[j] = saved;
      double numeric = (plus - minus) / (2 * options.eps);
      if (!(std::abs(a[j] - numeric) <= options.atol + options.rtol * std::abs(numeric))) {
        return ::testing::AssertionFailure()
               << "input " << k << " element " << j << ": autograd " << a[j] << ", numeric "
               << numeric << " (|diff| " << std::abs(a[j] - numeric) << ")";
      }
    }
  }
  return ::testing::AssertionSuccess();
}

int64_t graph_size(const Tensor& t) {
  std::unordered_set<const autograd::Node*> seen;
  std::vector<const autograd::Node*> todo;
  if (t.grad_fn()) todo.push_back(t.grad_fn().get());
  while (!todo.empty()) {
    const autograd::Node* node = todo.back();
    todo.pop_back();
    if (!seen.insert(node).second) continue;
    for (const autograd::Edge& e : node->next_edges())
      if (e.valid()) todo.push_back(e.node.get());
  }
  return static_cast<int64_t>(seen.size());
}

}  // namespace ponder::testing
