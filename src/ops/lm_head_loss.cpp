#include "ops/lm_head_loss.h"

#include <algorithm>
#include <span>

#include "autograd/function.h"
#include "backend/cpu/cross_entropy.h"
#include "backend/cpu/matmul.h"
#include "backend/cuda/cross_entropy.h"
#include "backend/cuda/matmul.h"
#include "backend/id_check.h"
#include "backend/kernels.h"
#include "ops/creation.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/op_support.h"
#include "ops/reduce.h"
#include "ops/view.h"

namespace ponder {
using namespace ops_detail;

namespace {

constexpr const char* kName = "lm_head_cross_entropy";

void check_inputs(const Tensor& hidden, const Tensor& weight, const Tensor& targets, Reduction reduction,
                  int64_t chunk_tokens) {
  check_defined(kName, {&hidden, &weight, &targets});
  check_same_device(kName, {&hidden, &weight, &targets});
  check_same_dtype(kName, {&hidden, &weight});
  check_floating(kName, hidden);
  PONDER_CHECK(targets.dtype() == DType::i64 || targets.dtype() == DType::i32, DTypeError, kName,
               ": targets must be i64 or i32, got ", describe(targets));
  PONDER_CHECK(weight.dim() == 2, ShapeError, kName, ": weight must be [vocabulary, d], got ", describe(weight));
  PONDER_CHECK(hidden.dim() >= 1 && hidden.size(-1) == weight.size(1), ShapeError, kName,
               ": the last dimension of hidden ", describe(hidden), " does not match the width of weight ",
               describe(weight));
  Shape leading(std::span<const int64_t>(hidden.shape().begin(), hidden.dim() - 1));
  PONDER_CHECK(targets.shape() == leading, ShapeError, kName, ": targets ", targets.shape(),
               " do not match the leading shape of hidden ", hidden.shape());
  PONDER_CHECK(reduction != Reduction::none, ValueError, kName,
               ": reduction must be sum or mean (per-token losses need the unfused cross_entropy)");
  PONDER_CHECK(chunk_tokens >= 1, ValueError, kName, ": chunk_tokens must be at least 1, got ", chunk_tokens);
}

// What the chunks fill in: per-token losses and, when gradients are wanted, dh and dW for an
// upstream gradient of 1 (row_scale holds each token's d(loss)/d(its cross-entropy)).
struct ChunkOutputs {
  TensorOptions stats;  // f32 (f64 for f64 inputs) on the inputs' device
  Tensor losses, row_scale, dh, dw;
};

// Loss of hidden [N, d] against weight [V, d]; saves dh and dW for backward.
class LmHeadLoss final : public autograd::Function {
 public:
  LmHeadLoss(Tensor targets, int64_t ignore_index, Reduction reduction, int64_t chunk_tokens, bool grad_hidden,
             bool grad_weight)
      : targets_(std::move(targets)),
        ignore_index_(ignore_index),
        reduction_(reduction),
        chunk_(chunk_tokens),
        grad_hidden_(grad_hidden),
        grad_weight_(grad_weight) {}

  const char* name() const override { return kName; }

  TensorList forward(const TensorList& in) override {
    const Tensor h = backend::contiguous(in[0]), w = backend::contiguous(in[1]);
    const int64_t tokens = h.size(0);
    dtype_ = h.dtype();
    ChunkOutputs out;
    out.stats = {dtype_ == DType::f64 ? DType::f64 : DType::f32, h.device()};
    out.losses = Tensor::empty({tokens}, out.stats);
    // max(number of counted targets, 1): the mean's divisor, 0 loss rather than 0/0 when none count.
    Tensor divisor;
    if (reduction_ == Reduction::mean) {
      Tensor counted = sum(ne(targets_, scalar_like(double(ignore_index_), targets_)).to(out.stats.dtype));
      divisor = maximum(counted, scalar_like(1.0, counted));
    }
    if (grad_hidden_ || grad_weight_) {
      out.row_scale = divisor.defined() ? backend::contiguous(expand(1.0 / divisor, {tokens}))
                                        : full({tokens}, 1.0, out.stats);
    }
    if (grad_hidden_) out.dh = Tensor::empty(h.shape(), h.options());
    if (grad_weight_) out.dw = zeros(w.shape(), {dtype_ == DType::bf16 ? DType::f32 : dtype_, w.device()});
    for (int64_t start = 0; start < tokens; start += chunk_) {
      run_chunk(out, h, w, start, std::min(chunk_, tokens - start));
    }
    save_for_backward({out.dh, out.dw});
    Tensor total = sum(out.losses);
    return {divisor.defined() ? total / divisor : total};
  }

  TensorList backward(const TensorList& g) override { return {scaled(saved(0), g[0]), weight_gradient(saved(1), g[0])}; }

 private:
  void run_chunk(const ChunkOutputs& out, const Tensor& h, const Tensor& w, int64_t start, int64_t len) const {
    const Tensor hc = h.narrow(0, start, len), tc = targets_.narrow(0, start, len);
    Tensor logits = matmul(hc, w.t());
    Tensor lse = Tensor::empty({len}, out.stats);
    PONDER_DISPATCH(h.device(), cross_entropy_forward, out.losses.narrow(0, start, len), lse, logits, tc,
                    ignore_index_);
    if (!out.row_scale.defined()) return;
    // The logits become their gradient in place.
    PONDER_DISPATCH(h.device(), cross_entropy_backward, logits, logits, lse, tc, out.row_scale.narrow(0, start, len),
                    ignore_index_);
    // The head's two gradient products: dh_c = dlogits · W into dh's rows, and dW += dlogitsᵀ · h_c
    // summed by the GEMM itself (beta = 1) in dW's dtype, f32 for a bf16 weight.
    const Tensor dh = out.dh.defined() ? out.dh.narrow(0, start, len) : Tensor();
    PONDER_DISPATCH(h.device(), linear_backward, dh, out.dw, Tensor(), logits, hc, w, false, out.dw.defined());
  }

  // A saved gradient times the 0-d upstream gradient, in the inputs' dtype.
  Tensor scaled(const Tensor& grad, const Tensor& upstream) const {
    if (!grad.defined()) return {};
    return (grad * upstream.to(grad.dtype())).to(dtype_);
  }

  // dW times the upstream gradient. Where the engine offers a target of dW's dtype (the fp32 .grad
  // of a bf16 weight: Node::accumulate_into), it is added there in one pass, never rounded to bf16
  // and without a scaled copy of dW (as large as the head: it would be the step's peak).
  Tensor weight_gradient(const Tensor& dw, const Tensor& upstream) {
    const Tensor target = accumulation_target(1);
    if (!dw.defined() || !target.defined() || target.dtype() != dw.dtype()) return scaled(dw, upstream);
    backend::add_into(target, dw, backend::contiguous(upstream.to(dw.dtype())));
    return target;
  }

  Tensor targets_;
  int64_t ignore_index_;
  Reduction reduction_;
  int64_t chunk_;
  bool grad_hidden_, grad_weight_;
  DType dtype_ = DType::f32;
};

}  // namespace

Tensor lm_head_cross_entropy(const Tensor& hidden, const Tensor& weight, const Tensor& targets, int64_t ignore_index,
                             Reduction reduction, int64_t chunk_tokens) {
  check_inputs(hidden, weight, targets, reduction, chunk_tokens);
  Tensor h = reshape(hidden, {-1, weight.size(1)});
  Tensor t = backend::contiguous(reshape(targets, {-1}));
  backend::check_ids(backend::IdCheck::lm_head_targets, t, weight.size(0), ignore_index);
  auto fn = std::make_shared<LmHeadLoss>(t, ignore_index, reduction, chunk_tokens, autograd::needs_grad({&h}),
                                         autograd::needs_grad({&weight}));
  return autograd::call(fn, {h, weight})[0];
}

}  // namespace ponder
