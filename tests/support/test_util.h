// Helpers shared by the tests: random inputs, closeness checks and the f64 gradient checker.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "ops/ops.h"

namespace ponder::testing {

// Deterministic normal values in f64 (then converted), for test inputs.
Tensor random_tensor(const Shape& shape, uint64_t seed, DType dtype = DType::f64,
                     bool requires_grad = false);

// max |a - b| <= atol + rtol * |b| elementwise; reports the worst element otherwise.
::testing::AssertionResult all_close(const Tensor& actual, const Tensor& expected,
                                     double rtol = 1e-5, double atol = 1e-8);

// ||a - b|| / ||b|| (norms over all elements, computed in f64).
double relative_error(const Tensor& actual, const Tensor& expected);

struct GradcheckOptions {
  double eps = 1e-6;   // central-difference step
  double atol = 1e-6;
  double rtol = 1e-5;
  uint64_t seed = 7;   // for the random upstream gradient
};

// Compares the gradients autograd computes for f against central differences, for every
// input that requires grad (inputs must be contiguous f64 tensors). The output is reduced with
// a random weight so every output element and every input element is exercised.
::testing::AssertionResult gradcheck(const std::function<Tensor(const TensorList&)>& f,
                                     const TensorList& inputs, GradcheckOptions options = {});

// The message of the E that f() throws; records a test failure when it throws nothing or another type.
// The number of distinct autograd nodes reachable from t's grad_fn (0 for a leaf).
int64_t graph_size(const Tensor& t);

template <class E, class F>
std::string error_message(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected a different exception type, got: " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected an exception, none was thrown";
  return "";
}

}  // namespace ponder::testing
