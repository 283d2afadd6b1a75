#include "optim/adam.h"

#include "backend/cpu/optim.h"
#include "backend/cuda/optim.h"
#include "backend/dispatch.h"

namespace ponder::optim {
namespace {

const std::vector<std::string> kMoments = {"exp_avg", "exp_avg_sq"};

void check_betas(const char* optimizer, double beta1, double beta2) {
  PONDER_CHECK(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1, ValueError, optimizer,
               ": betas must lie in [0, 1), got (", beta1, ", ", beta2, ")");
}

// The operands of every parameter in `due` (Optimizer::Due), each with its own step count.
template <class DueList>
std::vector<backend::AdamTensors> adam_tensors(const DueList& due, double beta1, double beta2, double eps) {
  std::vector<backend::AdamTensors> out;
  for (const auto& d : due) {
    const backend::AdamStep step{.lr = d.lr,
                                 .beta1 = beta1,
                                 .beta2 = beta2,
                                 .eps = eps,
                                 .weight_decay = d.group.weight_decay,
                                 .t = d.slot.updates};
    out.push_back({d.slot.param, d.slot.master, d.slot.param.grad(), d.slot.buffers[0], d.slot.buffers[1], step});
  }
  return out;
}

}  // namespace

AdamW::AdamW(std::vector<ParamGroup> groups, AdamWOptions options)
    : Optimizer(std::move(groups), options.lr, kMoments), options_(options) {
  check_betas("AdamW", options.beta1, options.beta2);
  PONDER_CHECK(options.eps >= 0, ValueError, "AdamW: eps must be >= 0, got ", options.eps);
}

void AdamW::update_parameters(const Tensor& grad_scale) {
  update_batched([&](const std::vector<Due>& due) {
    const auto tensors = adam_tensors(due, options_.beta1, options_.beta2, options_.eps);
    PONDER_DISPATCH(due.front().slot.param.device(), adamw_update_list, tensors, grad_scale);
  });
}

AdamATan2::AdamATan2(std::vector<ParamGroup> groups, AdamAtan2Options options)
    : Optimizer(std::move(groups), options.lr, kMoments), options_(options) {
  check_betas("AdamATan2", options.beta1, options.beta2);
}

void AdamATan2::update_parameters(const Tensor& grad_scale) {
  update_batched([&](const std::vector<Due>& due) {
    const auto tensors = adam_tensors(due, options_.beta1, options_.beta2, 0.0);
    PONDER_DISPATCH(due.front().slot.param.device(), adam_atan2_update_list, tensors, grad_scale);
  });
}

}  // namespace ponder::optim
