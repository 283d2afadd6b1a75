#include "models/hrm_text/hrm_text.h"

#include <algorithm>
#include <cmath>

#include "autograd/grad_mode.h"
#include "nn/init.h"
#include "ops/elementwise.h"
#include "ops/view.h"

namespace ponder::models {

int64_t BackpropSchedule::depth(int64_t step, int64_t total_steps) const {
  if (fixed > 0) return fixed;
  const double warmup_steps = warmup_ratio * double(total_steps);
  const double progress = warmup_steps > 0 ? std::min(1.0, double(step) / warmup_steps) : 1.0;
  return bp_min + static_cast<int64_t>(std::floor(progress * double(bp_max - bp_min)));
}

GradientCalls::GradientCalls(int64_t h, int64_t l, int64_t bp) : h_cycles(h), l_cycles(l) {
  PONDER_CHECK(bp >= 2 && bp <= h * l + h, ValueError, "hrm_text: backprop depth ", bp,
               " must be at least 2 (one H call and one L call) and at most H_cycles·L_cycles + H_cycles = ",
               h * l + h);
  h_bp = std::min(h, bp - 1);
  l_bp = bp - h_bp;
}

int64_t HrmTextConfig::resolved_head_dim() const { return head_dim > 0 ? head_dim : dim / heads; }

int64_t HrmTextConfig::resolved_ffn_hidden() const { return ffn_hidden > 0 ? ffn_hidden : nn::swiglu_hidden(dim); }

double HrmTextConfig::resolved_embedding_scale() const {
  return embedding_scale > 0 ? embedding_scale : std::sqrt(double(dim));
}

std::optional<ConfigProblem> find_problem(const HrmTextConfig& c) {
  auto str = [](auto v) { return std::to_string(v); };
  if (c.h_cycles < 1) return ConfigProblem{"H_cycles", "must be at least 1, got " + str(c.h_cycles)};
  if (c.l_cycles < 1) return ConfigProblem{"L_cycles", "must be at least 1, got " + str(c.l_cycles)};
  if (c.dim % c.heads != 0) return ConfigProblem{"heads", str(c.heads) + " heads do not divide dim " + str(c.dim)};
  const BackpropSchedule& bp = c.bp;
  if (bp.bp_min < 2) return ConfigProblem{"bp_min", "must be at least 2 (one H call and one L call), got " + str(bp.bp_min)};
  if (bp.bp_min > bp.bp_max) {
    return ConfigProblem{"bp_min", str(bp.bp_min) + " is larger than bp_max " + str(bp.bp_max)};
  }
  if (bp.bp_max > c.recurrent_calls()) {
    return ConfigProblem{"bp_max", str(bp.bp_max) + " exceeds the " + str(c.recurrent_calls()) +
                                       " recurrent calls (H_cycles·L_cycles + H_cycles)"};
  }
  if (bp.fixed != 0 && (bp.fixed < 2 || bp.fixed > c.recurrent_calls())) {
    return ConfigProblem{"bp", str(bp.fixed) + " is outside 2.." + str(c.recurrent_calls()) +
                                   " (H_cycles·L_cycles + H_cycles recurrent calls)"};
  }
  return std::nullopt;
}

void validate(const HrmTextConfig& c) {
  PONDER_CHECK(c.vocab_size > 0 && c.dim > 0 && c.layers_per_stack > 0 && c.heads > 0 && c.head_dim >= 0,
               ValueError, "hrm_text: vocab_size, dim, layers_per_stack, heads and head_dim must be positive");
  if (auto problem = find_problem(c)) fail<ValueError>("hrm_text: ", problem->key, ": ", problem->message);
}

nn::BlockConfig block_config(const HrmTextConfig& c) {
  validate(c);
  nn::BlockConfig b;
  b.attn.dim = c.dim;
  b.attn.heads = c.heads;
  b.attn.head_dim = c.resolved_head_dim();
  b.attn.rope_theta = c.rope_theta;
  b.attn.output_gate = true;
  b.mlp.dim = c.dim;
  b.mlp.hidden = c.resolved_ffn_hidden();
  b.mlp.activation = nn::Activation::swiglu;
  b.norm = {nn::NormKind::rms, c.norm_eps, /*weighted=*/false};
  return b;
}

HrmTextBody::HrmTextBody(const HrmTextConfig& c, Generator& gen) {
  const nn::BlockConfig block = block_config(c);
  const nn::NormConfig magic_norm{nn::NormKind::rms, c.norm_eps, /*weighted=*/false};
  embed_tokens = register_module(
      "embed_tokens", std::make_shared<nn::Embedding>(c.vocab_size, c.dim, gen, c.resolved_embedding_scale(),
                                                      1.0 / std::sqrt(double(c.dim))));
  L_module = register_module("L_module", std::make_shared<nn::Stack>(block, c.layers_per_stack, magic_norm, gen));
  H_module = register_module("H_module", std::make_shared<nn::Stack>(block, c.layers_per_stack, magic_norm, gen));
  z_L_init = Tensor::empty({c.dim}, {DType::f32, Device::cpu()});
  nn::trunc_normal_(z_L_init, 1.0, gen);
  register_buffer("z_L_init", z_L_init);
}

HrmText::HrmText(const HrmTextConfig& config)
    : config_(config), bp_(config.bp.depth(0, 1)), h_cycles_(config.h_cycles), l_cycles_(config.l_cycles) {
  Generator gen(config.seed);
  model = register_module("model", std::make_shared<HrmTextBody>(config, gen));
  lm_head = register_module("lm_head", std::make_shared<nn::Linear>(config.dim, config.vocab_size, gen));
  // Every projection (q, k, v, gate, o, the MLP's and the LM head) is LeCun normal:
  // std 1/sqrt(fan_in), so down_proj gets 1/sqrt(intermediate) and lm_head 1/sqrt(dim).
  for (auto& [name, p] : named_parameters()) {
    if (p.dim() == 2 && name != "model.embed_tokens.weight") {
      NoGrad no_grad;
      nn::lecun_normal_(p, gen);
    }
  }
}

void HrmText::set_backprop_depth(int64_t bp) {
  GradientCalls(config_.h_cycles, config_.l_cycles, bp);  // validates
  bp_ = bp;
}

void HrmText::begin_step(int64_t step, int64_t total_steps) {
  set_backprop_depth(config_.bp.depth(step, total_steps));
}

namespace {
struct Cycles {
  int64_t h, l;
  std::string label() const {
    std::string s = "H";  // appended piecewise: "H" + to_string(...) trips GCC 12's -Wrestrict false positive
    s += std::to_string(h);
    s += 'L';
    return s + std::to_string(l);
  }
  int64_t stack_calls() const { return h * l + h; }
};

std::vector<Cycles> depth_cycles(const HrmTextConfig& c) {
  const int64_t H = c.h_cycles, L = c.l_cycles;
  std::vector<Cycles> all = {{1, 1}, {2, 2}, {H, L}, {H, 2 * L}, {2 * H, L}, {2 * H, 2 * L}};
  std::sort(all.begin(), all.end(), [](const Cycles& a, const Cycles& b) {
    return std::pair(a.stack_calls(), a.h) < std::pair(b.stack_calls(), b.h);
  });
  all.erase(std::unique(all.begin(), all.end(), [](const Cycles& a, const Cycles& b) { return a.h == b.h && a.l == b.l; }),
            all.end());
  return all;
}
}  // namespace

std::vector<EvalDepth> HrmText::eval_depths() const {
  std::vector<EvalDepth> depths;
  const double trained = double(config_.recurrent_calls());
  for (const Cycles& c : depth_cycles(config_)) depths.push_back({c.label(), double(c.stack_calls()) / trained});
  return depths;
}

void HrmText::set_eval_depth(const std::string& label) {
  if (label.empty()) {
    h_cycles_ = config_.h_cycles;
    l_cycles_ = config_.l_cycles;
    return;
  }
  for (const Cycles& c : depth_cycles(config_)) {
    if (c.label() != label) continue;
    h_cycles_ = c.h;
    l_cycles_ = c.l;
    return;
  }
  std::string known;
  for (const Cycles& c : depth_cycles(config_)) known += (known.empty() ? "" : ", ") + c.label();
  fail<ValueError>("hrm_text: no evaluation depth '", label, "' (known: ", known, ")");
}

Tensor HrmText::features(const PackedBatch& batch) {
  return recurrence(batch.tokens, batch.positions, batch.attn, {});
}

Tensor HrmText::next_token_logits(const Tensor& tokens, DecodeCache& cache) {
  const CachedStep step = begin_cached_step(tokens, cache, (h_cycles_ * l_cycles_ + h_cycles_) * config_.layers_per_stack);
  const Tensor z_H = recurrence(tokens, step.positions, step.spec, cache.attention);
  return head(narrow(z_H, 0, z_H.size(0) - 1, 1));
}

Tensor HrmText::recurrence(const Tensor& tokens, const Tensor& positions, const AttentionSpec& spec,
                           std::span<nn::KVCache> caches) const {
  // At another evaluation depth, the last bp calls of that recurrence (as many as it has).
  const GradientCalls calls(h_cycles_, l_cycles_, std::min(bp_, h_cycles_ * l_cycles_ + h_cycles_));
  const bool recording = autograd::is_grad_enabled();
  const size_t layers = static_cast<size_t>(config_.layers_per_stack);
  size_t stack_calls = 0;
  auto stack_call = [&](const nn::Stack& stack, const Tensor& state, const Tensor& injection, bool records) {
    GradScope scope(recording && records);  // a call outside the last bp keeps no activations
    const auto call_caches = caches.empty() ? caches : caches.subspan(stack_calls++ * layers, layers);
    return stack.forward(nn::PendingSum{state, injection}, positions, spec, call_caches);
  };
  Tensor z_H = model->embed_tokens->forward(tokens);
  Tensor z_L = model->z_L_init;  // broadcast over positions by the first addition
  int64_t l_call = 0;
  for (int64_t h = 0; h < h_cycles_; ++h) {
    for (int64_t l = 0; l < l_cycles_; ++l, ++l_call) {
      z_L = stack_call(*model->L_module, z_L, z_H, calls.records_l_call(l_call));
    }
    z_H = stack_call(*model->H_module, z_H, z_L, calls.records_h_call(h));
  }
  return z_H;
}

}  // namespace ponder::models
