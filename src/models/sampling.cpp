#include "models/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "tensor/philox.h"

namespace ponder::models {
namespace {

std::vector<float> host_logits(const Tensor& logits) {
  PONDER_CHECK(logits.numel() > 0 && (logits.dim() == 1 || (logits.dim() == 2 && logits.size(0) == 1)), ShapeError,
               "Sampler: logits must be [vocab] or [1, vocab], got ", describe(logits));
  return logits.to(DType::f32).to(Device::cpu()).contiguous().to_vector<float>();
}

int32_t argmax(const std::vector<float>& logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

// The tokens sampling may choose, most likely first (ties: lower id first), with their
// probabilities after temperature, top-k and top-p; not normalised after the cuts.
struct Candidates {
  std::vector<int32_t> ids;
  std::vector<double> probs;
};

Candidates candidates(const std::vector<float>& logits, const SamplingOptions& o) {
  Candidates c;
  c.ids.resize(logits.size());
  std::iota(c.ids.begin(), c.ids.end(), 0);
  const size_t k = o.top_k > 0 ? std::min(c.ids.size(), static_cast<size_t>(o.top_k)) : c.ids.size();
  std::partial_sort(c.ids.begin(), c.ids.begin() + static_cast<std::ptrdiff_t>(k), c.ids.end(),
                    [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  c.ids.resize(k);
  const double top = logits[c.ids.front()];
  double total = 0;
  for (int32_t id : c.ids) {
    c.probs.push_back(std::exp((double(logits[id]) - top) / o.temperature));
    total += c.probs.back();
  }
  double mass = 0;
  for (size_t i = 0; i < c.probs.size(); ++i) {
    mass += c.probs[i] / total;
    if (mass >= o.top_p) {
      c.ids.resize(i + 1);
      c.probs.resize(i + 1);
      break;
    }
  }
  return c;
}

}  // namespace

void validate(const SamplingOptions& o) {
  PONDER_CHECK(std::isfinite(o.temperature) && o.temperature >= 0, ValueError,
               "sampling: temperature must be a non-negative number (0 = greedy), got ", o.temperature);
  PONDER_CHECK(o.top_k >= 0, ValueError, "sampling: top_k must be non-negative (0 = every token), got ", o.top_k);
  PONDER_CHECK(o.top_p > 0 && o.top_p <= 1, ValueError, "sampling: top_p must be in (0, 1], got ", o.top_p);
}

Sampler::Sampler(const SamplingOptions& options) : options_(options), generator_(options.seed) { validate(options); }

int32_t Sampler::next(const Tensor& logits) {
  const std::vector<float> values = host_logits(logits);
  if (options_.temperature == 0) return argmax(values);
  const Candidates c = candidates(values, options_);
  const double total = std::accumulate(c.probs.begin(), c.probs.end(), 0.0);
  const double u = philox::to_unit(philox::word(generator_.seed(), generator_.take(1), 0)) * total;
  double mass = 0;
  for (size_t i = 0; i < c.ids.size(); ++i) {
    mass += c.probs[i];
    if (u < mass) return c.ids[i];
  }
  return c.ids.back();  // u within rounding of the total
}

}  // namespace ponder::models
