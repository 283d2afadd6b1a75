#include "optim/adam.h"

#include "backend/cpu/optim.h"
#include "backend/dispatch.h"

namespace ponder::optim {
namespace {

const std::vector<std::string> kMoments = {"exp_avg", "exp_avg_sq"};

void check_betas(const char* optimizer, double beta1, double beta2) {
  PONDER_CHECK(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1, ValueError, optimizer,
               ": betas must lie in [0, 1), got (", beta1, ", ", beta2, ")");
}

backend::AdamStep adam_step(double lr, double beta1, double beta2, double eps, const ParamGroup& group,
                            int64_t t) {
  return {.lr = lr, .beta1 = beta1, .beta2 = beta2, .eps = eps, .weight_decay = group.weight_decay, .t = t};
}

}  // namespace

AdamW::AdamW(std::vector<ParamGroup> groups, AdamWOptions options)
    : Optimizer(std::move(groups), options.lr, kMoments), options_(options) {
  check_betas("AdamW", options.beta1, options.beta2);
  PONDER_CHECK(options.eps >= 0, ValueError, "AdamW: eps must be >= 0, got ", options.eps);
}

void AdamW::step() {
  update_all([&](Slot& s, const ParamGroup& group, double lr) {
    const auto h = adam_step(lr, options_.beta1, options_.beta2, options_.eps, group, s.updates);
    PONDER_DISPATCH_CPU(s.param.device(), adamw_update, s.param, s.master, s.param.grad(), s.buffers[0], s.buffers[1], h);
  });
}

AdamATan2::AdamATan2(std::vector<ParamGroup> groups, AdamAtan2Options options)
    : Optimizer(std::move(groups), options.lr, kMoments), options_(options) {
  check_betas("AdamATan2", options.beta1, options.beta2);
}

void AdamATan2::step() {
  update_all([&](Slot& s, const ParamGroup& group, double lr) {
    const auto h = adam_step(lr, options_.beta1, options_.beta2, 0.0, group, s.updates);
    PONDER_DISPATCH_CPU(s.param.device(), adam_atan2_update, s.param, s.master, s.param.grad(), s.buffers[0],
                    s.buffers[1], h);
  });
}

}  // namespace ponder::optim
