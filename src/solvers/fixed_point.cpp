#include "solvers/fixed_point.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "autograd/grad_mode.h"
#include "ops/ops.h"
#include "tensor/error.h"

namespace ponder::solvers {
namespace {

// Weights α minimising ‖Σ α_i g_i‖² + λ‖α‖² subject to Σ α_i = 1, for one sample, from the
// Gram matrix of its residuals g_i (n×n, row-major). The bordered (n+1)×(n+1) system
// [[0, 1ᵀ], [1, G + λI]] [ν; α] = [1; 0] is solved in fp32; nothing when it has no finite answer.
std::optional<std::vector<double>> anderson_weights(const double* gram, int n, double lam) {
  double scale = 0;
  for (int i = 0; i < n; ++i) scale = std::max(scale, gram[i * n + i]);
  if (!(scale > 0 && std::isfinite(scale))) return std::nullopt;
  Eigen::MatrixXf system = Eigen::MatrixXf::Zero(n + 1, n + 1);
  for (int i = 0; i < n; ++i) {
    system(0, i + 1) = system(i + 1, 0) = 1.0f;
    for (int j = 0; j < n; ++j) system(i + 1, j + 1) = static_cast<float>(gram[i * n + j] / scale);
    system(i + 1, i + 1) += static_cast<float>(lam);
  }
  Eigen::VectorXf rhs = Eigen::VectorXf::Zero(n + 1);
  rhs(0) = 1.0f;
  Eigen::VectorXf solution = system.partialPivLu().solve(rhs);
  std::vector<double> alpha(n);
  double total = 0;
  for (int i = 0; i < n; ++i) total += alpha[i] = solution(i + 1);
  if (!std::isfinite(total) || total == 0) return std::nullopt;
  // fp32 leaves Σα off 1 by ~1e-7, which would shift the iterate by that much of its own size.
  for (double& a : alpha) a /= total;
  return alpha;
}

// The last m iterates y_i and their residuals g_i = f(y_i) − y_i, flattened per sample into
// ring buffers allocated once, so a long solve uses the same memory as a short one.
class AndersonHistory {
 public:
  AndersonHistory(const Tensor& y0, const FixedPointOptions& options)
      : batch_(y0.size(0)), options_(options) {
    Shape shape{batch_, options.m, y0.numel() / batch_};
    iterates_ = zeros(shape, y0.options());
    residuals_ = zeros(shape, y0.options());
  }

  // Records (y, f(y)) and returns the next iterate: the mix of the history that minimises the
  // combined residual (a damped Picard step for samples whose weights are not finite).
  Tensor next(const Tensor& y, const Tensor& fy) {
    const int slot = count_ % options_.m;
    write(iterates_, slot, y);
    write(residuals_, slot, fy - y);
    ++count_;
    const int n = std::min(count_, options_.m);
    Tensor xs = iterates_.narrow(1, 0, n), gs = residuals_.narrow(1, 0, n);
    Tensor alpha = tensor(weights(gs, slot), {batch_, 1, n}, y.options());
    // β·Σα f(y_i) + (1 − β)·Σα y_i, written as Σα y_i + β·Σα g_i.
    return (matmul(alpha, xs) + matmul(alpha, gs) * options_.beta).reshape(y.shape());
  }

 private:
  void write(const Tensor& buffer, int slot, const Tensor& value) const {
    copy_(buffer.narrow(1, slot, 1), value.reshape({batch_, 1, -1}));
  }

  // Per-sample weights [B × n] from the residuals [B, n, N]; `latest` is the newest slot.
  std::vector<double> weights(const Tensor& residuals, int latest) const {
    const int n = residuals.size(1);
    std::vector<double> gram = matmul(residuals, residuals.transpose(1, 2)).to_vector<double>();
    std::vector<double> all;
    all.reserve(batch_ * n);
    for (int64_t b = 0; b < batch_; ++b) {
      std::optional<std::vector<double>> alpha = anderson_weights(&gram[b * n * n], n, options_.lam);
      for (int i = 0; i < n; ++i) all.push_back(alpha ? (*alpha)[i] : double(i == latest));
    }
    return all;
  }

  int64_t batch_;
  FixedPointOptions options_;
  Tensor iterates_, residuals_;  // [B, m, N]
  int count_ = 0;
};

Tensor apply_map(const FixedPointMap& f, const Tensor& y) {
  Tensor fy = f(y);
  PONDER_CHECK(fy.defined() && fy.shape() == y.shape() && fy.dtype() == y.dtype() &&
                   fy.device() == y.device(),
               ShapeError, "solve_fixed_point: f maps an iterate ", describe(y), " to ",
               fy.defined() ? describe(fy) : std::string("nothing"),
               "; it must keep the shape, dtype and device");
  return fy;
}

bool diverged(double residual) { return std::isnan(residual) || residual > kDivergedResidual; }

}  // namespace

SolverKind parse_solver_kind(std::string_view name) {
  if (name == "picard") return SolverKind::picard;
  if (name == "anderson") return SolverKind::anderson;
  fail<ValueError>("unknown fixed-point solver '", name, "' (expected picard or anderson)");
}

void check_options(const FixedPointOptions& o) {
  PONDER_CHECK(o.tol >= 0, ValueError, "fixed-point solver: tol must be >= 0, got ", o.tol);
  PONDER_CHECK(o.max_iter >= 1, ValueError, "fixed-point solver: max_iter must be >= 1, got ", o.max_iter);
  PONDER_CHECK(o.min_iter >= 0 && o.min_iter <= o.max_iter, ValueError,
               "fixed-point solver: min_iter must be in [0, max_iter = ", o.max_iter, "], got ", o.min_iter);
  PONDER_CHECK(o.m >= 1, ValueError, "fixed-point solver: the Anderson history m must be >= 1, got ", o.m);
  PONDER_CHECK(o.lam >= 0, ValueError, "fixed-point solver: the Anderson regulariser lam must be >= 0, got ",
               o.lam);
  PONDER_CHECK(o.beta > 0 && o.beta <= 1, ValueError,
               "fixed-point solver: the Anderson mixing beta must be in (0, 1], got ", o.beta);
}

Tensor per_sample_norm(const Tensor& x) { return norm(x.reshape({x.size(0), -1}), {1}); }

double max_relative_residual(const Tensor& y, const Tensor& fy) {
  const int64_t batch = y.size(0);
  // One device-to-host copy: ‖fy − y‖, ‖y‖ and ‖fy‖ per sample.
  std::vector<double> norms =
      stack({per_sample_norm(fy - y), per_sample_norm(y), per_sample_norm(fy)}, 0).to_vector<double>();
  double worst = 0;
  for (int64_t b = 0; b < batch; ++b) {
    double diff = norms[b], y_norm = norms[batch + b], fy_norm = norms[2 * batch + b];
    double scale = y_norm > 0 ? y_norm : fy_norm > 0 ? fy_norm : 1.0;
    double residual = diff / scale;
    if (std::isnan(residual)) return std::numeric_limits<double>::quiet_NaN();
    worst = std::max(worst, residual);
  }
  return worst;
}

FixedPointResult solve_fixed_point(const FixedPointMap& f, const Tensor& y0,
                                   const FixedPointOptions& options) {
  check_options(options);
  PONDER_CHECK(y0.defined() && y0.dim() >= 1 && y0.size(0) >= 1 && y0.is_floating_point(), ShapeError,
               "solve_fixed_point: the start y0 must be a floating tensor [batch, ...], got ",
               y0.defined() ? describe(y0) : std::string("nothing"));
  NoGrad no_grad;
  std::optional<AndersonHistory> anderson;
  if (options.kind == SolverKind::anderson) anderson.emplace(y0, options);

  FixedPointResult best;
  best.residual = std::numeric_limits<double>::infinity();
  Tensor y = y0;
  for (int k = 1;; ++k) {
    Tensor fy = apply_map(f, y);
    double residual = max_relative_residual(y, fy);
    if (diverged(residual)) {
      if (!best.solution.defined()) best = {{0, residual}, y};
      best.iterations = k;
      best.failed = true;
      return best;
    }
    if (residual < best.residual) best = {{0, residual}, y};
    if (k >= options.min_iter && residual < options.tol) return {{k, residual, true, false}, y};
    if (k == options.max_iter) {
      best.iterations = k;
      return best;
    }
    y = anderson ? anderson->next(y, fy) : fy;
  }
}

}  // namespace ponder::solvers
