// Choosing the next token from a model's logits: greedy, or sampled with temperature, top-k and
// top-p (nucleus) filtering from a seeded Philox stream, so a seed replays a generation exactly.
#pragma once

#include <cstdint>

#include "tensor/generator.h"
#include "tensor/tensor.h"

namespace ponder::models {

struct SamplingOptions {
  double temperature = 0.0;  // 0: greedy (the most likely token, the first on ties)
  int64_t top_k = 0;         // keep only the k most likely tokens (0: all)
  double top_p = 1.0;        // then the fewest most likely tokens whose probability reaches top_p
  uint64_t seed = 0;
};

// ValueError naming the first option out of range (temperature < 0, top_k < 0, top_p outside (0, 1]).
void validate(const SamplingOptions& options);

class Sampler {
 public:
  explicit Sampler(const SamplingOptions& options);
  // The next token for logits [vocab] or [1, vocab] on any device. Each sampled token takes one
  // Philox block of the stream; greedy choices take none.
  int32_t next(const Tensor& logits);

 private:
  SamplingOptions options_;
  Generator generator_;
};

}  // namespace ponder::models
