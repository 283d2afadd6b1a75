#include "models/sst/sst.h"

#include <algorithm>

#include "ops/ops.h"
#include "ops/scan.h"

namespace ponder::models {
namespace {

const std::vector<std::string> kLoraTargets = {"q_proj", "k_proj", "v_proj", "o_proj",
                                               "gate_proj", "up_proj", "down_proj"};

// a = h + Attn(norm1(h)): the part of a layer that reads no state.
Tensor attention_residual(const nn::TransformerBlock& block, const Tensor& h, const Tensor& positions,
                          const AttentionSpec& spec, nn::KVCache* cache) {
  return h + block.self_attn->forward(block.input_layernorm->forward(h), positions, spec, cache);
}

StateFfn state_ffn(const nn::TransformerBlock& block) {
  return [&block](const Tensor& b) { return block.mlp->forward(block.post_attention_layernorm->forward(b)); };
}

nn::Linear& projection(const nn::TransformerBlock& block, const std::string& name) {
  if (name == "q_proj") return *block.self_attn->q_proj;
  if (name == "k_proj") return *block.self_attn->k_proj;
  if (name == "v_proj") return *block.self_attn->v_proj;
  if (name == "o_proj") return *block.self_attn->o_proj;
  if (name == "up_proj") return *block.mlp->up_proj;
  if (name == "down_proj") return *block.mlp->down_proj;
  return *block.mlp->gate_proj;
}

std::vector<uint8_t> sample_starts(const Tensor& positions) {
  std::vector<uint8_t> starts;
  for (int64_t p : positions.to_vector<int64_t>()) starts.push_back(p == 0);
  return starts;
}

bool changed_less_than(const Tensor& now, const Tensor& before, double tolerance) {
  return norm(now - before).item<double>() <= tolerance * norm(before).item<double>();
}

}  // namespace

std::optional<ConfigProblem> find_problem(const SstConfig& c) {
  auto str = [](auto v) { return std::to_string(v); };
  for (auto [key, value] : {std::pair{"alpha_min", c.alpha_min}, std::pair{"alpha_max", c.alpha_max}}) {
    if (!(value > 0 && value < 1)) return ConfigProblem{key, "must lie in (0, 1), got " + str(value)};
  }
  if (c.alpha_min >= c.alpha_max) {
    return ConfigProblem{"alpha_min", str(c.alpha_min) + " is not below alpha_max " + str(c.alpha_max)};
  }
  if (c.deliberation < 1 || c.deliberation > 4) {
    return ConfigProblem{"deliberation", "must be 1 to 4 iterations, got " + str(c.deliberation)};
  }
  if (!(c.deliberation_tol >= 0)) return ConfigProblem{"deliberation_tol", "must be non-negative"};
  if (c.lora_rank < 0) return ConfigProblem{"lora_rank", "must be non-negative, got " + str(c.lora_rank)};
  if (c.lora_rank == 0) return std::nullopt;
  for (const std::string& t : c.lora_targets) {
    if (std::find(kLoraTargets.begin(), kLoraTargets.end(), t) == kLoraTargets.end()) {
      return ConfigProblem{"lora_targets", "no projection \"" + t +
                                               "\" in a block (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)"};
    }
  }
  for (int64_t l : c.lora_layers) {
    if (l < 0 || l >= c.layers) {
      return ConfigProblem{"lora_layers", "layer " + str(l) + " does not exist (the model has layers 0.." +
                                              str(c.layers - 1) + ")"};
    }
  }
  return std::nullopt;
}

void validate(const SstConfig& config) {
  if (auto problem = find_problem(config)) fail<ValueError>("sst: ", problem->key, ": ", problem->message);
}

Stream stream_step(const Tensor& a, const Tensor& alpha, const Tensor& previous, const StateFfn& ffn,
                   bool state_is_output) {
  const Tensor b = (1.0 - alpha) * a + alpha * previous;  // the blend
  const Tensor m = ffn(b);
  const Tensor h = b + m;
  return {h, state_is_output ? h : m};
}

Stream stream_sequential(const Tensor& a, const Tensor& alpha, const std::vector<uint8_t>& starts, const StateFfn& ffn,
                         bool state_is_output, const Tensor& initial) {
  PONDER_CHECK(int64_t(starts.size()) == a.size(0), ShapeError, "sst: ", starts.size(), " start flags for ",
               describe(a));
  const Tensor zero = zeros({1, a.size(1)}, a.options());
  TensorList outputs, states;
  Tensor state = initial;
  for (int64_t t = 0; t < a.size(0); ++t) {
    const Tensor previous = starts[size_t(t)] || !state.defined() ? zero : state;
    const Stream step = stream_step(narrow(a, 0, t, 1), alpha, previous, ffn, state_is_output);
    state = step.states;
    outputs.push_back(step.output);
    states.push_back(step.states);
  }
  return {cat(outputs, 0), cat(states, 0)};
}

Tensor stream_two_pass(const Tensor& a, const Tensor& alpha, const Tensor& starts, const StateFfn& ffn,
                       bool state_is_output, bool pass1_grad) {
  Tensor first;
  {
    GradScope scope(pass1_grad && autograd::is_grad_enabled());  // pass 1: the layer with α = 0
    const Tensor m0 = ffn(a);
    first = state_is_output ? a + m0 : m0;
  }
  const Tensor streamed = linear_scan(first, alpha, starts);  // ŝ_t = (1 − α) s⁰_t + α ŝ_{t−1}
  const int64_t n = a.size(0);
  const Tensor not_start = reshape(1.0 - to_dtype(starts, a.dtype()), {n, 1});
  const Tensor shifted = cat({zeros({1, a.size(1)}, a.options()), narrow(streamed, 0, 0, n - 1)}, 0);
  return stream_step(a, alpha, shifted * not_start, ffn, state_is_output).output;  // pass 2: blend with ŝ_{t−1}
}

Sst::Sst(const SstConfig& config) : Transformer(config), config_(config), iterations_(config.deliberation) {
  validate(config);
  blend_theta = zeros({config.layers, config.dim});
  register_parameter("blend_theta", blend_theta);
  if (config.freeze_backbone) {
    model->set_requires_grad(false);
    if (lm_head) lm_head->set_requires_grad(false);
  }
  add_adapters();
}

void Sst::add_adapters() {
  if (config_.lora_rank == 0) return;
  Generator gen(config_.seed + 1);  // adapters draw after the backbone's initialisation
  std::vector<int64_t> layers = config_.lora_layers;
  if (layers.empty()) {
    for (int64_t l = 0; l < config_.layers; ++l) layers.push_back(l);
  }
  for (int64_t l : layers) {
    for (const std::string& target : config_.lora_targets) {
      projection((*model->layers)[size_t(l)], target).add_lora({.rank = config_.lora_rank, .alpha = config_.lora_alpha}, gen);
    }
  }
}

Tensor Sst::alpha(int64_t layer) const {
  const Tensor theta = reshape(narrow(blend_theta, 0, layer, 1), {config_.dim});
  return config_.alpha_min + (config_.alpha_max - config_.alpha_min) * sigmoid(theta);
}

bool Sst::is_sst_parameter(const std::string& name) {
  return name == "blend_theta" || name.find(".lora_A.") != std::string::npos ||
         name.find(".lora_B.") != std::string::npos;
}

void Sst::merge_adapters() {
  for (size_t l = 0; l < model->layers->size(); ++l) {
    for (const std::string& target : kLoraTargets) {
      nn::Linear& p = projection((*model->layers)[l], target);
      if (p.has_lora()) p.merge_lora();
    }
  }
}

Tensor Sst::stack(const Tensor& x, const Tensor& positions, const AttentionSpec& spec) const {
  const std::vector<uint8_t> starts = sample_starts(positions);
  const bool two_pass = is_training() && config_.mode == SstMode::two_pass;
  const Tensor start_flags =
      two_pass ? tensor(std::vector<double>(starts.begin(), starts.end()), {int64_t(starts.size())},
                        {.dtype = DType::u8, .device = x.device()})
               : Tensor();
  Tensor h = x;
  for (size_t l = 0; l < model->layers->size(); ++l) {
    const nn::TransformerBlock& block = (*model->layers)[l];
    const Tensor a = attention_residual(block, h, positions, spec, nullptr);
    h = two_pass ? stream_two_pass(a, alpha(int64_t(l)), start_flags, state_ffn(block), config_.state_is_output)
                 : stream_sequential(a, alpha(int64_t(l)), starts, state_ffn(block), config_.state_is_output).output;
  }
  return model->norm->forward(h);
}

Tensor Sst::deliberate(const Tensor& x, const Tensor& positions, const AttentionSpec& spec, std::span<nn::KVCache> caches,
                       std::vector<Tensor>& states) {
  const int64_t n = x.size(0);
  const std::vector<uint8_t> continuing(size_t(n), 0);  // the block carries on from `states`
  std::vector<Tensor> produced(states.size());
  Tensor h;
  int64_t iteration = 0;
  while (iteration < iterations_) {
    const std::vector<Tensor> before = produced;
    h = x;
    for (size_t l = 0; l < produced.size(); ++l) {
      const nn::TransformerBlock& block = (*model->layers)[l];
      if (iteration > 0) caches[l].truncate(caches[l].length() - n);  // overwrite the block's keys and values
      const Tensor a = attention_residual(block, h, positions, spec, &caches[l]);
      const Stream s = iteration == 0 ? stream_sequential(a, alpha(int64_t(l)), continuing, state_ffn(block),
                                                          config_.state_is_output, states[l])
                                      : stream_step(a, alpha(int64_t(l)), before[l], state_ffn(block),
                                                    config_.state_is_output);
      h = s.output;
      produced[l] = s.states;
    }
    ++iteration;
    if (iteration > 1 && config_.deliberation_tol > 0 &&
        changed_less_than(cat(produced, 0), cat(before, 0), config_.deliberation_tol)) {
      break;
    }
  }
  for (size_t l = 0; l < states.size(); ++l) states[l] = narrow(produced[l], 0, n - 1, 1);  // committed
  if (iterations_ > 1) {  // depth 1 is plain decoding, not deliberation
    ++deliberated_blocks_;
    deliberation_iterations_ += iteration;
  }
  return h;
}

Tensor Sst::continue_sequence(const Tensor& tokens, int64_t block, DecodeCache& cache) {
  if (cache.length == 0) cache.states.assign(size_t(config_.layers), Tensor());
  TensorList outputs;
  for (int64_t first = 0, n = block; first < tokens.size(0); first += n, n = 1) {
    const Tensor piece = narrow(tokens, 0, first, n);
    const CachedStep step = begin_cached_step(piece, cache, config_.layers);
    outputs.push_back(
        deliberate(model->embed_tokens->forward(piece), step.positions, step.spec, cache.attention, cache.states));
  }
  return model->norm->forward(cat(outputs, 0));
}

Tensor Sst::deliberated_features(const PackedBatch& batch) {
  const std::vector<int64_t> cu = batch.attn.cu_seqlens.to_vector<int64_t>();
  const std::vector<int64_t> prefix =
      batch.attn.mask == AttentionMask::prefix_lm ? batch.attn.prefix_len.to_vector<int64_t>() : std::vector<int64_t>();
  TensorList outputs;
  for (size_t s = 0; s + 1 < cu.size(); ++s) {
    const int64_t n = cu[s + 1] - cu[s];
    if (n == 0) continue;
    // The positions that attend to each other both ways open the sequence as one block.
    int64_t block = 1;
    if (batch.attn.mask == AttentionMask::bidirectional) block = n;
    if (batch.attn.mask == AttentionMask::prefix_lm) block = std::clamp<int64_t>(prefix[s], 1, n);
    DecodeCache cache(batch.attn.mask == AttentionMask::causal ? AttentionMask::causal : AttentionMask::prefix_lm);
    outputs.push_back(continue_sequence(narrow(batch.tokens, 0, cu[s], n), block, cache));
  }
  return cat(outputs, 0);
}

Tensor Sst::features(const PackedBatch& batch) {
  if (!is_training() && iterations_ > 1) return deliberated_features(batch);
  return stack(model->embed_tokens->forward(batch.tokens), batch.positions, batch.attn);
}

Tensor Sst::next_token_logits(const Tensor& tokens, DecodeCache& cache) {
  // A causal prompt deliberates token by token; with one iteration that equals one block, which is faster.
  const bool per_token = cache.length == 0 && cache.prompt_mask == AttentionMask::causal && iterations_ > 1;
  const Tensor x = continue_sequence(tokens, per_token ? 1 : tokens.size(0), cache);
  return head(narrow(x, 0, x.size(0) - 1, 1));
}

std::vector<EvalDepth> Sst::eval_depths() const {
  // Each iteration runs the whole stack once more: the cost scales with the iterations (at most,
  // with an early stop).
  const double trained = double(config_.deliberation);
  return {{"1", 1 / trained}, {"2", 2 / trained}, {"4", 4 / trained}};
}

void Sst::set_eval_depth(const std::string& label) {
  if (label.empty()) {
    iterations_ = config_.deliberation;
    return;
  }
  PONDER_CHECK(label == "1" || label == "2" || label == "4", ValueError, "sst: no evaluation depth '", label,
               "' (deliberation depths are 1, 2 and 4)");
  iterations_ = std::stoll(label);
}

std::map<std::string, double> Sst::take_step_metrics() {
  std::map<std::string, double> metrics;
  if (deliberated_blocks_ > 0) {
    metrics["sst_deliberation_iters"] = double(deliberation_iterations_) / double(deliberated_blocks_);
  }
  deliberated_blocks_ = deliberation_iterations_ = 0;
  return metrics;
}

}  // namespace ponder::models
