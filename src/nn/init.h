// Parameter initialisation. Every random fill draws from a seeded Philox Generator, so one seed
// gives the same model on every device; models construct their layers in a fixed order and may
// then override the defaults of single parameters with init_matching.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "nn/module.h"
#include "ops/creation.h"

namespace ponder::nn {

// The fills of ops/creation.h, re-exported: normal_(t, mean, std, gen), uniform_(t, low, high, gen)
// and HRM-Text's trunc_normal_(t, std, gen) = fmod(N(0,1), 3) * 1.0148 * std.
using ponder::normal_;
using ponder::trunc_normal_;
using ponder::uniform_;

// trunc_normal_ with std 1/sqrt(fan_in), fan_in = t.size(-1) (a [out, in] weight's input width).
void lecun_normal_(const Tensor& t, Generator& gen);
// torch.nn.init.kaiming_uniform_ (leaky-relu gain): U(-b, b), b = sqrt(6 / ((1 + a^2) fan_in)).
// a = sqrt(5) gives b = 1/sqrt(fan_in), the default of torch.nn.Linear and of PEFT's lora_A.
void kaiming_uniform_(const Tensor& t, double a, Generator& gen);
void zeros_(const Tensor& t);
void ones_(const Tensor& t);

// Calls `init` (with grad mode off; it fills in place) on every parameter of `module` whose dotted
// name is `suffix` or ends with "." + suffix, e.g. "down_proj.weight" or "mlp.down_proj.weight"
// (whole name components only: "proj.weight" matches no "down_proj.weight"). Returns how many
// parameters matched.
int64_t init_matching(Module& module, const std::string& suffix,
                      const std::function<void(const Tensor&)>& init);

// An initialiser named in a recipe: "normal" (std), "trunc_normal" (std), "lecun_normal",
// "zeros", "ones". Unknown names are a ValueError listing the known ones.
using Initializer = std::function<void(const Tensor&, Generator&)>;
Initializer initializer(std::string_view name, double std = 0.02);

}  // namespace ponder::nn
