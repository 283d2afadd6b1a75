// Process-wide determinism switch (runtime.deterministic), read by every kernel that has a faster
// order-dependent variant. Off by default. CPU kernels reduce in a fixed order either way; on the
// GPU, with it on:
// - GEMMs use only cuBLASLt algorithms without split-K reduction (the split the heuristic picks
//   depends on the GPU's SM count);
// - the bf16 attention backward computes dQ in its own kernel instead of adding it into an f32 sum
//   with atomics (whose order varies run to run).
// Every other kernel is deterministic already, so with this on a run repeats bit for bit on the
// same GPU model.
#pragma once

namespace ponder::backend {

void set_deterministic(bool on);
bool deterministic();

}  // namespace ponder::backend
