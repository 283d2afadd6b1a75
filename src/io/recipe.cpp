#include "io/recipe.h"

#include "nn/mlp.h"

namespace ponder::io {
namespace {

const std::vector<std::string> kFamilies = {"transformer", "hrm_text", "attractor", "sst"};
const std::vector<std::string> kMasks = {"prefix_lm", "causal", "bidirectional"};

models::TransformerConfig read_transformer(Section& m) {
  models::TransformerConfig c;
  c.vocab_size = m.require<int64_t>("vocab_size", positive_int());
  c.dim = m.get<int64_t>("dim", c.dim, positive_int());
  c.layers = m.get<int64_t>("layers", c.layers, positive_int());
  c.heads = m.get<int64_t>("heads", c.heads, positive_int());
  c.kv_heads = m.get<int64_t>("kv_heads", c.kv_heads, non_negative_int());
  c.head_dim = m.get<int64_t>("head_dim", c.head_dim, non_negative_int());
  c.ffn_hidden = m.get<int64_t>("ffn_hidden", c.ffn_hidden > 0 ? c.ffn_hidden : nn::swiglu_hidden(c.dim),
                                positive_int());
  c.norm_eps = m.get<double>("norm_eps", c.norm_eps, positive());
  c.rope_theta = m.get<double>("rope_theta", c.rope_theta, non_negative());
  c.tie_embeddings = m.get<bool>("tie_embeddings", c.tie_embeddings);
  c.attention_output_gate = m.get<bool>("attention_output_gate", c.attention_output_gate);
  if (c.head_dim == 0 && c.dim % c.heads != 0) {
    m.fail("heads", std::to_string(c.heads) + " heads do not divide dim " + std::to_string(c.dim));
  }
  const int64_t kv = c.kv_heads == 0 ? c.heads : c.kv_heads;
  if (c.heads % kv != 0) {
    m.fail("kv_heads", std::to_string(kv) + " key/value heads do not divide " + std::to_string(c.heads) + " heads");
  }
  return c;
}

models::HrmTextConfig read_hrm_text(Section& m) {
  models::HrmTextConfig c;
  c.vocab_size = m.require<int64_t>("vocab_size", positive_int());
  c.dim = m.get<int64_t>("dim", c.dim, positive_int());
  c.layers_per_stack = m.get<int64_t>("layers_per_stack", c.layers_per_stack, positive_int());
  c.heads = m.get<int64_t>("heads", c.heads, positive_int());
  c.head_dim = m.get<int64_t>("head_dim", c.dim % c.heads == 0 ? c.dim / c.heads : 0, non_negative_int());
  c.ffn_hidden = m.get<int64_t>("ffn_hidden", nn::swiglu_hidden(c.dim), positive_int());
  c.h_cycles = m.get<int64_t>("H_cycles", c.h_cycles, non_negative_int());
  c.l_cycles = m.get<int64_t>("L_cycles", c.l_cycles, non_negative_int());
  c.embedding_scale = m.get<double>("embedding_scale", c.resolved_embedding_scale(), positive());
  c.norm_eps = m.get<double>("norm_eps", c.norm_eps, positive());
  c.rope_theta = m.get<double>("rope_theta", c.rope_theta, non_negative());
  c.prefix_lm = m.get<bool>("prefix_lm", c.prefix_lm);
  c.bp.bp_min = m.get<int64_t>("bp_min", c.bp.bp_min, non_negative_int());
  c.bp.bp_max = m.get<int64_t>("bp_max", c.bp.bp_max, non_negative_int());
  c.bp.warmup_ratio = m.get<double>("bp_warmup_ratio", c.bp.warmup_ratio, in_range(0, 1));
  c.bp.fixed = m.get<int64_t>("bp", c.bp.fixed, non_negative_int());
  if (auto problem = models::find_problem(c)) m.fail(problem->key, problem->message);
  return c;
}

Check<double> in_half_open_unit() {
  return {"a number in (0, 1]", [](const double& v) { return v > 0 && v <= 1; }};
}

// The solve knobs: the forward solver's, then the backward mode's (the adjoint solve reuses m,
// lam and beta).
void read_attractor_solver(Section& m, models::AttractorConfig& c) {
  solvers::FixedPointOptions& s = c.solver;
  s.kind = solvers::parse_solver_kind(m.get<std::string>("solver", "anderson", one_of({"picard", "anderson"})));
  s.m = static_cast<int>(m.get<int64_t>("m", s.m, positive_int()));
  s.lam = m.get<double>("lam", s.lam, non_negative());
  s.beta = m.get<double>("beta", s.beta, in_half_open_unit());
  s.tol = m.get<double>("tol", s.tol, positive());
  s.min_iter = static_cast<int>(m.get<int64_t>("min_iter", s.min_iter, non_negative_int()));
  s.max_iter = static_cast<int>(m.get<int64_t>("max_iter", s.max_iter, positive_int()));
  solvers::BackwardOptions& b = c.backward;
  b.mode = solvers::parse_backward_mode(
      m.get<std::string>("backward", "onestep", one_of({"onestep", "picard", "anderson", "jfb", "phantom"})));
  b.adjoint_clip = m.get<double>("adjoint_clip", b.adjoint_clip, non_negative());
  b.adjoint.tol = m.get<double>("backward_tol", s.tol, positive());
  b.adjoint.min_iter = static_cast<int>(m.get<int64_t>("backward_min_iter", 0, non_negative_int()));
  b.adjoint.max_iter = static_cast<int>(m.get<int64_t>("backward_max_iter", s.max_iter, positive_int()));
  b.phantom_steps = static_cast<int>(m.get<int64_t>("phantom_steps", b.phantom_steps, positive_int()));
  b.phantom_damping = m.get<double>("phantom_damping", b.phantom_damping, in_half_open_unit());
}

models::AttractorConfig read_attractor(Section& m) {
  models::AttractorConfig c;
  c.vocab_size = m.require<int64_t>("vocab_size", positive_int());
  c.dim = m.get<int64_t>("dim", c.dim, positive_int());
  c.heads = m.get<int64_t>("heads", c.heads, positive_int());
  c.ffn_hidden = m.get<int64_t>("ffn_hidden", c.resolved_ffn_hidden(), positive_int());
  c.n_backbone_layers = m.get<int64_t>("n_backbone_layers", c.n_backbone_layers, positive_int());
  c.n_fp_blocks = m.get<int64_t>("n_fp_blocks", c.n_fp_blocks, positive_int());
  c.norm_eps = m.get<double>("norm_eps", c.norm_eps, positive());
  c.rope_theta = m.get<double>("rope_theta", c.rope_theta, non_negative());
  c.attention = *mask_named(m.get<std::string>("attention", "causal", one_of(kMasks)));
  c.gamma_init = m.get<double>("gamma_init", c.gamma_init);
  c.gamma_max = m.get<double>("gamma_max", c.gamma_max, positive());
  c.logit_scale = m.get<double>("logit_scale", c.logit_scale, positive());
  read_attractor_solver(m, c);
  if (auto problem = models::find_problem(c)) m.fail(problem->key, problem->message);
  return c;
}

// The baseline's keys describe the backbone; the rest configure the state stream and co-training.
models::SstConfig read_sst(Section& m) {
  models::SstConfig c;
  static_cast<models::TransformerConfig&>(c) = read_transformer(m);
  c.alpha_min = m.get<double>("alpha_min", c.alpha_min);
  c.alpha_max = m.get<double>("alpha_max", c.alpha_max);
  c.state_is_output = m.get<std::string>("state", "ffn", one_of({"ffn", "output"})) == "output";
  const std::string mode = m.get<std::string>("mode", "two_pass", one_of({"two_pass", "sequential"}));
  c.mode = mode == "sequential" ? models::SstMode::sequential : models::SstMode::two_pass;
  c.deliberation = m.get<int64_t>("deliberation", c.deliberation, in_range_int(1, 4));
  c.deliberation_tol = m.get<double>("deliberation_tol", c.deliberation_tol, non_negative());
  c.freeze_backbone = m.get<bool>("freeze_backbone", c.freeze_backbone);
  c.backbone = m.get<std::string>("backbone", c.backbone);
  Section lora = m.section("lora");
  c.lora_rank = lora.get<int64_t>("rank", c.lora_rank, non_negative_int());
  c.lora_alpha = lora.get<double>("alpha", c.lora_alpha, positive());
  c.lora_targets = lora.get<std::vector<std::string>>("targets", c.lora_targets);
  c.lora_layers = lora.get<std::vector<int64_t>>("layers", c.lora_layers);
  if (auto problem = models::find_problem(c)) {
    const bool in_lora = problem->key.rfind("lora_", 0) == 0;
    (in_lora ? lora : m).fail(in_lora ? problem->key.substr(5) : problem->key, problem->message);
  }
  return c;
}

void read_model(Section root, Recipe& r) {
  Section m = root.section("model");
  r.family = m.require<std::string>("family", one_of(kFamilies));
  if (r.family == "transformer") r.model = read_transformer(m);
  if (r.family == "hrm_text") r.model = read_hrm_text(m);
  if (r.family == "attractor") r.model = read_attractor(m);
  if (r.family == "sst") r.model = read_sst(m);
}

// The attention mask a model family expects by default; HRM-Text's follows model.prefix_lm, an
// attractor's model.attention.
std::string default_mask(const Recipe& r) {
  if (const auto* attractor = std::get_if<models::AttractorConfig>(&r.model)) return mask_name(attractor->attention);
  const auto* hrm = std::get_if<models::HrmTextConfig>(&r.model);
  return hrm && !hrm->prefix_lm ? "causal" : "prefix_lm";
}

void read_data(Section root, Recipe& r) {
  Section d = root.section("data");
  DataRecipe& c = r.data;
  c.train = d.get<std::vector<std::string>>("train", {});
  c.eval = d.get<std::vector<std::string>>("eval", {});
  c.task = d.get<std::string>("task", "");
  c.task_train_examples = d.get<int64_t>("task_train_examples", c.task_train_examples, non_negative_int());
  c.task_eval_examples = d.get<int64_t>("task_eval_examples", c.task_eval_examples, non_negative_int());
  c.seq_len = d.get<int64_t>("seq_len", c.seq_len, positive_int());
  c.packing = d.get<std::string>("packing", c.packing, one_of({"greedy", "longest_first"}));
  c.loss = d.get<std::string>("loss", c.loss, one_of({"response", "all"}));
  c.mask = d.get<std::string>("mask", default_mask(r), one_of(kMasks));
  if (std::holds_alternative<models::HrmTextConfig>(r.model) && c.mask != default_mask(r)) {
    d.fail("mask", c.mask + " does not match model.prefix_lm (HRM-Text uses prefix_lm with prefix_lm: true, "
                            "causal with prefix_lm: false)");
  }
  if (std::holds_alternative<models::AttractorConfig>(r.model) && c.mask != default_mask(r)) {
    d.fail("mask", c.mask + " does not match model.attention " + default_mask(r));
  }
  c.prefetch = d.get<int64_t>("prefetch", c.prefetch, positive_int());
  if (c.train.empty() == c.task.empty()) {
    d.fail(c.task.empty() ? "train" : "task", "give either data.train (shards) or data.task (a synthetic task), not both or neither");
  }
}

void read_optim(Section root, Recipe& r) {
  Section o = root.section("optim");
  OptimRecipe& c = r.optim;
  c.name = o.get<std::string>("name", c.name, one_of({"adamw", "adam_atan2", "sgd", "muon"}));
  const bool muon = c.name == "muon";
  c.lr = o.get<double>("lr", muon ? 0.02 : c.lr, positive());
  c.beta1 = o.get<double>("beta1", c.beta1, in_range(0, 0.999999));
  c.beta2 = o.get<double>("beta2", c.beta2, in_range(0, 0.999999));
  c.eps = o.get<double>("eps", c.eps, positive());
  c.momentum = o.get<double>("momentum", muon ? 0.95 : c.momentum, in_range(0, 0.999999));
  c.nesterov = o.get<bool>("nesterov", muon || c.nesterov);
  if (muon) {
    c.ns_steps = o.get<int64_t>("ns_steps", c.ns_steps, positive_int());
    c.adam_lr = o.get<double>("adam_lr", c.adam_lr, positive());
  }
  for (const char* key : {"ns_steps", "adam_lr"}) {
    if (!muon && o.has(key)) o.fail(key, "only optim.name muon reads it (the name is " + c.name + ")");
  }
  c.weight_decay = o.get<double>("weight_decay", c.weight_decay, non_negative());
  c.decay_1d = o.get<bool>("decay_1d", c.decay_1d);
  c.clip_grad_norm = o.get<double>("clip_grad_norm", c.clip_grad_norm, non_negative());
  c.ema = o.get<double>("ema", c.ema, in_range(0, 0.999999999));
}

// batch.micro_tokens: a number of tokens, or auto (BatchRecipe::kAuto).
int64_t read_micro_tokens(Section& b, int64_t per_rank) {
  if (b.has("micro_tokens")) {
    const YAML::Node value = b.raw("micro_tokens");
    if (value.IsScalar() && value.Scalar() == "auto") return BatchRecipe::kAuto;
  }
  return b.get<int64_t>("micro_tokens", per_rank, {"a positive integer or auto", [](const int64_t& v) { return v > 0; }});
}

void read_train_and_batch(Section root, Recipe& r) {
  Section t = root.section("train"), b = root.section("batch");
  r.train.steps = t.get<int64_t>("steps", 0, non_negative_int());
  r.train.tokens = t.get<int64_t>("tokens", 0, non_negative_int());
  r.train.max_consecutive_skips = t.get<int64_t>("max_consecutive_skips", r.train.max_consecutive_skips, positive_int());
  r.train.spike_zscore = t.get<double>("spike_zscore", r.train.spike_zscore, non_negative());
  r.train.spike_window = t.get<int64_t>("spike_window", r.train.spike_window, in_range_int(2, 100000));
  r.batch.global_tokens = b.require<int64_t>("global_tokens", positive_int());
  const int64_t seq = r.data.seq_len, global = r.batch.global_tokens;
  // Each rank takes whole rows (micro-batches are whole rows), so checked before anything is divided.
  if (global % (seq * r.distributed.world_size) != 0) {
    b.fail("global_tokens", std::to_string(global) + " is not a multiple of data.seq_len × world size (" +
                                std::to_string(seq) + " × " + std::to_string(r.distributed.world_size) + ")");
  }
  r.batch.micro_tokens = read_micro_tokens(b, global / r.distributed.world_size);
  // auto is resolved when the run starts (train::resolve_by_memory): whole rows dividing each rank's share
  const int64_t micro = r.batch.micro_auto() ? seq : r.batch.micro_tokens;
  if (micro % seq != 0) {
    b.fail("micro_tokens", std::to_string(micro) + " is not a multiple of data.seq_len " + std::to_string(seq));
  }
  if (global % (micro * r.distributed.world_size) != 0) {
    b.fail("global_tokens", std::to_string(global) + " is not a multiple of batch.micro_tokens × world size (" +
                                std::to_string(micro) + " × " + std::to_string(r.distributed.world_size) + ")");
  }
  if ((r.train.steps > 0) == (r.train.tokens > 0)) {
    t.fail("steps", "give exactly one of train.steps and train.tokens");
  }
  if (r.train.tokens > 0) r.train.steps = (r.train.tokens + global - 1) / global;
}

void read_schedule(Section root, Recipe& r) {
  Section s = root.section("schedule");
  ScheduleRecipe& c = r.schedule;
  c.name = s.get<std::string>("name", c.name, one_of({"constant", "cosine", "wsd"}));
  c.warmup_steps = s.get<int64_t>("warmup_steps", c.warmup_steps, non_negative_int());
  c.min_ratio = s.get<double>("min_ratio", c.min_ratio, in_range(0, 1));
  c.decay_fraction = s.get<double>("decay_fraction", c.decay_fraction, in_range(0, 1));
  if (c.name != "constant" && c.warmup_steps >= r.train.steps) {
    s.fail("warmup_steps", std::to_string(c.warmup_steps) + " warmup steps leave nothing of train.steps " +
                               std::to_string(r.train.steps) + " for the " + c.name + " decay");
  }
}

void read_runtime(Section root, Recipe& r) {
  Section s = root.section("runtime");
  r.runtime.seed = static_cast<uint64_t>(s.get<int64_t>("seed", 0, non_negative_int()));
  r.runtime.device = s.get<std::string>("device", r.runtime.device, one_of({"auto", "cpu", "cuda"}));
  r.runtime.deterministic = s.get<bool>("deterministic", r.runtime.deterministic);
  r.runtime.precision = s.get<std::string>("precision", r.runtime.precision, one_of({"auto", "bf16", "f32"}));
  r.runtime.recompute =
      s.get<std::string>("recompute", r.runtime.recompute, one_of({"none", "elementwise", "mlp", "attention_mlp", "auto"}));
  r.runtime.cuda_graph = s.get<bool>("cuda_graph", r.runtime.cuda_graph);
}

void read_distributed(Section root, Recipe& r) {
  Section s = root.section("distributed");
  r.distributed.zero = s.get<int64_t>("zero", r.distributed.zero, in_range_int(0, 1));
  r.distributed.bucket_mb = s.get<int64_t>("bucket_mb", r.distributed.bucket_mb, positive_int());
}

void read_checkpoint_log_eval(Section root, Recipe& r) {
  Section c = root.section("checkpoint");
  r.checkpoint.every = c.get<int64_t>("every", r.checkpoint.every, non_negative_int());
  r.checkpoint.keep = c.get<int64_t>("keep", r.checkpoint.keep, positive_int());
  r.checkpoint.keep_every = c.get<int64_t>("keep_every", r.checkpoint.keep_every, non_negative_int());
  Section l = root.section("log");
  r.log.every = l.get<int64_t>("every", r.log.every, positive_int());
  Section e = root.section("eval");
  r.eval.every = e.get<int64_t>("every", r.eval.every, non_negative_int());
  r.eval.batches = e.get<int64_t>("batches", r.eval.batches, positive_int());
  r.eval.exact_match = e.get<int64_t>("exact_match", r.eval.exact_match, non_negative_int());
  r.eval.use_ema = e.get<bool>("use_ema", r.eval.use_ema);
}

Recipe read(ConfigReader& reader, const std::vector<std::string>& overrides, int64_t world_size) {
  for (const std::string& o : overrides) reader.set(o);
  Recipe r;
  r.distributed.world_size = world_size;
  Section root = reader.root();
  read_model(root, r);
  read_data(root, r);
  read_optim(root, r);
  read_train_and_batch(root, r);
  read_schedule(root, r);
  read_runtime(root, r);
  read_distributed(root, r);
  read_checkpoint_log_eval(root, r);
  reader.check_unknown_keys();
  r.resolved_yaml = reader.resolved();
  return r;
}

}  // namespace

int64_t Recipe::micro_tokens() const {
  PONDER_CHECK(!batch.micro_auto(), ValueError,
               "batch.micro_tokens is auto and has not been chosen yet (train::resolve_by_memory does it)");
  return batch.micro_tokens;
}

nn::Recompute Recipe::recompute() const {
  PONDER_CHECK(!runtime.recompute_auto(), ValueError,
               "runtime.recompute is auto and has not been chosen yet (train::resolve_by_memory does it)");
  return nn::parse_recompute(runtime.recompute);
}

Recipe load_recipe(const std::string& path, const std::vector<std::string>& overrides, int64_t world_size) {
  ConfigReader reader = ConfigReader::from_file(path);
  return read(reader, overrides, world_size);
}

AttentionMask DataRecipe::attention_mask() const { return mask_named(mask).value_or(AttentionMask::prefix_lm); }

Recipe parse_recipe(const std::string& yaml, const std::string& origin, const std::vector<std::string>& overrides,
                    int64_t world_size) {
  ConfigReader reader = ConfigReader::from_string(yaml, origin);
  return read(reader, overrides, world_size);
}

}  // namespace ponder::io
