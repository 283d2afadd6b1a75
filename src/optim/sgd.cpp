#include "optim/sgd.h"

#include "backend/cpu/optim.h"
#include "backend/cuda/optim.h"
#include "backend/dispatch.h"

namespace ponder::optim {
namespace {

std::vector<std::string> buffer_names(const SgdOptions& options) {
  if (options.momentum == 0) return {};
  return {"momentum_buffer"};
}

}  // namespace

Sgd::Sgd(std::vector<ParamGroup> groups, SgdOptions options)
    : Optimizer(std::move(groups), options.lr, buffer_names(options)), options_(options) {
  PONDER_CHECK(options.momentum >= 0 && options.dampening >= 0 && options.dampening <= 1, ValueError,
               "Sgd: momentum must be >= 0 and dampening in [0, 1], got ", options.momentum, " and ",
               options.dampening);
  PONDER_CHECK(!options.nesterov || (options.momentum > 0 && options.dampening == 0), ValueError,
               "Sgd: nesterov needs momentum > 0 and dampening 0, got ", options.momentum, " and ",
               options.dampening);
}

void Sgd::update_parameters(const Tensor& grad_scale) {
  update_all([&](Slot& s, const ParamGroup& group, double lr) {
    const backend::SgdStep h{.lr = lr,
                             .momentum = options_.momentum,
                             .dampening = options_.dampening,
                             .weight_decay = group.weight_decay,
                             .nesterov = options_.nesterov,
                             .first = s.updates == 1};
    const Tensor buffer = s.buffers.empty() ? Tensor() : s.buffers[0];
    PONDER_DISPATCH(s.param.device(), sgd_update, s.param, s.master, s.param.grad(), buffer, h, grad_scale);
  });
}

}  // namespace ponder::optim
