#include "cli/demo.h"

#include <chrono>
#include <cmath>
#include <cstdio>

#include "ops/ops.h"

namespace ponder::cli {
namespace {

constexpr int64_t kDigits = 10, kLength = 8, kWidth = 32, kHidden = 128, kBatch = 64;

// Task: read 8 random digits, answer the largest one. Returns (tokens [B, 8], answers [B]).
std::pair<Tensor, Tensor> make_batch(Generator& gen) {
  std::vector<double> u = rand({kBatch, kLength}, gen, {.dtype = DType::f64}).to_vector<double>();
  std::vector<double> tokens(u.size()), answers(kBatch, 0);
  for (size_t i = 0; i < u.size(); ++i) {
    tokens[i] = std::floor(u[i] * kDigits);
    answers[i / kLength] = std::max(answers[i / kLength], tokens[i]);
  }
  return {tensor(tokens, {kBatch, kLength}, {.dtype = DType::i64}), tensor(answers, {kBatch}, {.dtype = DType::i64})};
}

struct Adam {  // enough of Adam for the demo (src/optim has the real optimizers)
  double lr = 3e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  int t = 0;
  TensorList m, v;

  void step(const TensorList& params) {
    NoGrad no_grad;
    ++t;
    for (size_t i = 0; i < params.size(); ++i) {
      const Tensor& g = params[i].grad();
      if (m.size() <= i) {
        m.push_back(zeros_like(g));
        v.push_back(zeros_like(g));
      }
      m[i] = m[i] * b1 + g * (1 - b1);
      v[i] = v[i] * b2 + square(g) * (1 - b2);
      Tensor update = m[i] / (1 - std::pow(b1, t)) / (sqrt(v[i] / (1 - std::pow(b2, t))) + eps);
      copy_(params[i], params[i] - update * lr);
      params[i].set_grad({});
    }
  }
};

}  // namespace

int run_demo(const DemoOptions& options) {
  Generator init(options.seed), data(options.seed + 1);
  auto param = [&](const Shape& shape, double std) { return (randn(shape, init) * std).detach().set_requires_grad(true); };
  Tensor embed = param({kDigits, kWidth}, 1.0);
  Tensor w1 = param({kLength * kWidth, kHidden}, 1.0 / std::sqrt(double(kLength * kWidth)));
  Tensor w2 = param({kHidden, kDigits}, 1.0 / std::sqrt(double(kHidden)));
  TensorList params = {embed, w1, w2};
  Adam adam;

  std::printf("ponder demo: find the largest of %lld digits (embedding + MLP, %lld-example batches)\n",
              static_cast<long long>(kLength), static_cast<long long>(kBatch));
  auto start = std::chrono::steady_clock::now();
  double first = 0, last = 0;
  for (int step = 1; step <= options.steps; ++step) {
    auto [tokens, answers] = make_batch(data);
    Tensor h = relu(matmul(embedding(embed, tokens).reshape({kBatch, kLength * kWidth}), w1));
    Tensor loss = cross_entropy(matmul(h, w2), answers);
    loss.backward();
    adam.step(params);
    last = loss.item<float>();
    if (step == 1) first = last;
    if (step % options.log_every == 0 || step == 1) std::printf("step %4d  loss %.4f\n", step, last);
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("loss %.4f -> %.4f in %d steps (%.1f s)\n", first, last, options.steps, seconds);
  return last < first ? 0 : 1;
}

}  // namespace ponder::cli
