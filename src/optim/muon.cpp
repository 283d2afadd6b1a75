#include "optim/muon.h"

#include <algorithm>
#include <cmath>

#include "autograd/grad_mode.h"
#include "backend/cpu/optim.h"
#include "backend/cuda/optim.h"
#include "backend/dispatch.h"
#include "ops/cast.h"
#include "ops/elementwise.h"
#include "ops/inplace.h"
#include "ops/matmul.h"
#include "ops/reduce.h"

namespace ponder::optim {
namespace {

// The quintic's coefficients (Jordan et al.): a steep slope at 0 pulls small singular values up
// quickly, at the price of leaving them oscillating around 1 rather than converging to it.
constexpr double kA = 3.4445, kB = -4.7750, kC = 2.0315;
constexpr double kNormEps = 1e-7;

const char* const kMuonGroup = "muon";
const std::vector<std::string> kMuonBuffers = {"momentum_buffer"};
const std::vector<std::string> kAdamBuffers = {"exp_avg", "exp_avg_sq"};

void check_options(const MuonOptions& o) {
  PONDER_CHECK(o.momentum >= 0 && o.momentum < 1, ValueError, "Muon: momentum must lie in [0, 1), got ",
               o.momentum);
  PONDER_CHECK(o.ns_steps >= 1, ValueError, "Muon: ns_steps must be >= 1, got ", o.ns_steps);
}

void check_options(const MuonAdamWOptions& o) {
  check_options(o.muon);
  PONDER_CHECK(o.muon.lr > 0, ValueError, "MuonAdamW: Muon's lr must be > 0 (AdamW's is a multiple of it), got ",
               o.muon.lr);
  PONDER_CHECK(o.adamw.lr >= 0, ValueError, "MuonAdamW: AdamW's lr must be >= 0, got ", o.adamw.lr);
  PONDER_CHECK(o.adamw.beta1 >= 0 && o.adamw.beta1 < 1 && o.adamw.beta2 >= 0 && o.adamw.beta2 < 1, ValueError,
               "MuonAdamW: AdamW's betas must lie in [0, 1), got (", o.adamw.beta1, ", ", o.adamw.beta2, ")");
  PONDER_CHECK(o.adamw.eps >= 0, ValueError, "MuonAdamW: AdamW's eps must be >= 0, got ", o.adamw.eps);
}

// The Newton–Schulz iteration runs in bf16 on a GPU (tensor-core matmuls; the iteration tolerates
// the rounding), in the state dtype on the CPU.
DType iteration_dtype(const Tensor& u) { return u.device().is_cuda() ? DType::bf16 : u.dtype(); }

// One Muon update of a 2-D parameter; `master` as in backend/cpu/optim.h.
void muon_update(const Tensor& param, const Tensor& master, const Tensor& momentum_buffer,
                 const MuonOptions& o, double lr, double weight_decay) {
  NoGrad no_grad;
  const Tensor weights = master.defined() ? master : param;
  const Tensor g = to_dtype(param.grad(), momentum_buffer.dtype());
  copy_(momentum_buffer, momentum_buffer * o.momentum + g);
  const Tensor u = o.nesterov ? g + momentum_buffer * o.momentum : momentum_buffer;
  const Tensor ortho = to_dtype(newton_schulz(to_dtype(u, iteration_dtype(u)), o.ns_steps), weights.dtype());
  // Orthogonal updates have RMS ~ 1/sqrt(cols); the factor keeps tall matrices' steps comparable.
  const double scale = std::sqrt(std::max(1.0, double(param.size(0)) / double(param.size(1))));
  copy_(weights, weights * (1 - lr * weight_decay) - ortho * (lr * scale));
  if (master.defined()) copy_(param, master);
}

std::vector<ParamGroup> muon_adamw_groups(const nn::NamedTensors& params, const MuonAdamWOptions& o) {
  check_options(o);
  ParamGroup muon{kMuonGroup, {}, o.weight_decay};
  nn::NamedTensors rest;
  for (const auto& [name, p] : params) {
    if (!p.requires_grad()) continue;
    if (MuonAdamW::uses_muon(name, p)) {
      muon.params.push_back(p);
    } else {
      rest.emplace_back(name, p);
    }
  }
  std::vector<ParamGroup> groups;
  if (!muon.params.empty()) groups.push_back(std::move(muon));
  for (ParamGroup& g : decay_groups(rest, o.weight_decay, o.decay_1d)) {
    g.name = "adamw_" + g.name;
    g.lr_scale = o.adamw.lr / o.muon.lr;
    groups.push_back(std::move(g));
  }
  return groups;
}

std::vector<std::vector<std::string>> buffer_names_of(const std::vector<ParamGroup>& groups) {
  std::vector<std::vector<std::string>> names;
  for (const ParamGroup& g : groups) names.push_back(g.name == kMuonGroup ? kMuonBuffers : kAdamBuffers);
  return names;
}

}  // namespace

Tensor newton_schulz(const Tensor& x, int64_t steps) {
  PONDER_CHECK(x.dim() == 2, ShapeError, "newton_schulz: expected a 2-D tensor, got ", describe(x));
  // X·Xᵀ is then the smaller Gram matrix.
  const bool tall = x.size(0) > x.size(1);
  Tensor X = tall ? x.t() : x;
  X = X / (norm(X) + kNormEps);  // the spectral norm ≤ the Frobenius norm = 1: inside the basin
  for (int64_t i = 0; i < steps; ++i) {
    const Tensor A = matmul(X, X.t());
    const Tensor B = A * kB + matmul(A * kC, A);
    X = X * kA + matmul(B, X);
  }
  return tall ? X.t() : X;
}

Muon::Muon(std::vector<ParamGroup> groups, MuonOptions options)
    : Optimizer(std::move(groups), options.lr, kMuonBuffers), options_(options) {
  check_options(options);
  for (const ParamGroup& group : this->groups()) {
    for (size_t i = 0; i < group.params.size(); ++i) {
      PONDER_CHECK(group.params[i].dim() == 2, ShapeError, "Muon: parameter ", group.name, ".", i, " ",
                   describe(group.params[i]), " is not 2-D (give it to AdamW, e.g. with MuonAdamW)");
    }
  }
}

void Muon::update_parameters(const Tensor&) {
  update_all([&](Slot& s, const ParamGroup& group, double lr) {
    muon_update(s.param, s.master, s.buffers[0], options_, lr, group.weight_decay);
  });
}

MuonAdamW::MuonAdamW(const nn::NamedTensors& params, MuonAdamWOptions options)
    : MuonAdamW(muon_adamw_groups(params, options), options) {}

MuonAdamW::MuonAdamW(std::vector<ParamGroup> groups, MuonAdamWOptions options)
    : Optimizer(groups, options.muon.lr, buffer_names_of(groups)), options_(options) {}

bool MuonAdamW::uses_muon(const std::string& name, const Tensor& param) {
  const bool embedding_or_head = name.find("embed") != std::string::npos || name.find("lm_head") != std::string::npos;
  return param.dim() == 2 && !embedding_or_head;
}

void MuonAdamW::update_parameters(const Tensor&) {
  update_all([&](Slot& s, const ParamGroup& group, double lr) {
    if (group.name == kMuonGroup) {
      muon_update(s.param, s.master, s.buffers[0], options_.muon, lr, group.weight_decay);
      return;
    }
    const AdamWOptions& a = options_.adamw;
    const backend::AdamStep h{.lr = lr, .beta1 = a.beta1, .beta2 = a.beta2, .eps = a.eps,
                              .weight_decay = group.weight_decay, .t = s.updates};
    PONDER_DISPATCH(s.param.device(), adamw_update, s.param, s.master, s.param.grad(), s.buffers[0],
                    s.buffers[1], h);
  });
}

}  // namespace ponder::optim
