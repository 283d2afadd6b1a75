#include "nn/init.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "ops/inplace.h"

namespace ponder::nn {
namespace {
int64_t fan_in(const Tensor& t, const char* what) {
  PONDER_CHECK(t.defined() && t.dim() >= 1 && t.size(-1) > 0, ValueError, what,
               ": needs a tensor with a non-empty last dimension (fan_in), got ",
               t.defined() ? describe(t) : std::string("an undefined tensor"));
  return t.size(-1);
}
}  // namespace

void lecun_normal_(const Tensor& t, Generator& gen) {
  trunc_normal_(t, 1.0 / std::sqrt(double(fan_in(t, "lecun_normal_"))), gen);
}

void kaiming_uniform_(const Tensor& t, double a, Generator& gen) {
  const double bound = std::sqrt(6.0 / ((1.0 + a * a) * double(fan_in(t, "kaiming_uniform_"))));
  uniform_(t, -bound, bound, gen);
}

void zeros_(const Tensor& t) {
  NoGrad no_grad;
  fill_(t, 0.0);
}

void ones_(const Tensor& t) {
  NoGrad no_grad;
  fill_(t, 1.0);
}

int64_t init_matching(Module& module, const std::string& suffix,
                      const std::function<void(const Tensor&)>& init) {
  PONDER_CHECK(!suffix.empty(), ValueError, "init_matching: empty name suffix");
  NoGrad no_grad;
  int64_t matched = 0;
  for (auto& [name, param] : module.named_parameters()) {
    const bool whole = name == suffix;
    const bool tail = name.size() > suffix.size() && name.ends_with(suffix) &&
                      name[name.size() - suffix.size() - 1] == '.';
    if (!whole && !tail) continue;
    init(param);
    ++matched;
  }
  return matched;
}

Initializer initializer(std::string_view name, double std) {
  if (name == "normal") return [std](const Tensor& t, Generator& g) { normal_(t, 0.0, std, g); };
  if (name == "trunc_normal") return [std](const Tensor& t, Generator& g) { trunc_normal_(t, std, g); };
  if (name == "lecun_normal") return [](const Tensor& t, Generator& g) { lecun_normal_(t, g); };
  if (name == "zeros") return [](const Tensor& t, Generator&) { zeros_(t); };
  if (name == "ones") return [](const Tensor& t, Generator&) { ones_(t); };
  fail<ValueError>("unknown initialiser \"", name,
                   "\" (expected normal, trunc_normal, lecun_normal, zeros or ones)");
}

}  // namespace ponder::nn
