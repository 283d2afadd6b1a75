#include "ops/fused.h"

#include "backend/cpu/fused.h"
#include "backend/cuda/fused.h"
#include "backend/kernels.h"
#include "ops/op_support.h"

namespace ponder {
using namespace ops_detail;
using backend::UnaryOp;

namespace {

Tensor empty_like_or_none(bool wanted, const Tensor& t) {
  return wanted ? Tensor::empty(t.shape(), t.options()) : Tensor();
}

// act(gate) * value; inputs: gate, value.
struct GatedProductBackward final : Node {
  GatedProductBackward(const char* op, UnaryOp act) : op(op), act(act) {}
  const char* name() const override { return op; }
  TensorList apply(TensorList&& grads) override {
    const Tensor& g = gate.get(op);
    Tensor grad_gate = empty_like_or_none(needs_input_grad(0), g);
    Tensor grad_value = empty_like_or_none(needs_input_grad(1), g);
    PONDER_DISPATCH(g.device(), gated_product_backward, act, grad_gate, grad_value, backend::contiguous(grads[0]), g,
                    value.get(op));
    return {grad_gate, grad_value};
  }
  void release_saved() override {
    gate.reset();
    value.reset();
  }
  const char* op;
  UnaryOp act;
  SavedTensor gate, value;  // contiguous
};

// gate_name and value_name name the operands in the op's messages.
Tensor gated_product_op(const char* op, const char* gate_name, const char* value_name, UnaryOp act, const Tensor& gate,
                        const Tensor& value) {
  check_same_device(op, {&gate, &value});
  check_same_dtype(op, {&gate, &value});
  check_floating(op, gate);
  PONDER_CHECK(gate.shape() == value.shape(), ShapeError, op, ": ", gate_name, " ", gate.shape(), " and ", value_name,
               " ", value.shape(), " must have the same shape");
  Tensor g = backend::contiguous(gate), v = backend::contiguous(value);
  Tensor out = Tensor::empty(gate.shape(), gate.options());
  PONDER_DISPATCH(gate.device(), gated_product, act, out, g, v);
  if (auto node = make_node<GatedProductBackward>({&gate, &value}, op, act)) {
    node->gate = g;
    node->value = v;
    set_history(out, node);
  }
  return out;
}

// Inputs: x, residual, weight. Both x and residual receive the gradient of the sum: the output
// `sum`'s own gradient plus what flows back through the normalisation.
struct AddRmsNormBackward final : Node {
  const char* name() const override { return "add_rms_norm"; }
  TensorList apply(TensorList&& grads) override {
    const Tensor& s = sum.get(name());
    Tensor w = weight.defined() ? weight.get(name()) : Tensor();
    const bool input_grad = needs_input_grad(0) || needs_input_grad(1);
    Tensor grad_input = empty_like_or_none(input_grad, s);
    Tensor grad_weight = needs_input_grad(2) ? Tensor::empty(w.shape(), w.options()) : Tensor();
    PONDER_DISPATCH(s.device(), add_rms_norm_backward, grad_input, grad_weight,
                    backend::contiguous(grad_or_zeros(grads[0], 0)), backend::contiguous(grad_or_zeros(grads[1], 1)), s,
                    w, rstd.get(name()), kept_is_output(w));
    return {needs_input_grad(0) ? grad_input : Tensor(), needs_input_grad(1) ? grad_input : Tensor(), grad_weight};
  }
  void release_saved() override {
    sum.reset();
    weight.reset();
    rstd.reset();
  }
  SavedTensor sum, weight, rstd;  // sum (or the normalised output, see kept_is_output) and weight contiguous
};

// Rotates by the negated angles, the transpose of the rotation. Inputs: q, k.
struct RopeQKBackward final : Node {
  const char* name() const override { return "rope_qk"; }
  TensorList apply(TensorList&& grads) override {
    Tensor gq = backend::contiguous(grad_or_zeros(grads[0], 0)), gk = backend::contiguous(grad_or_zeros(grads[1], 1));
    Tensor dq = Tensor::empty(gq.shape(), gq.options()), dk = Tensor::empty(gk.shape(), gk.options());
    PONDER_DISPATCH(gq.device(), rope_qk, dq, dk, gq, gk, positions.get(name()), theta, /*inverse=*/true);
    return {needs_input_grad(0) ? dq : Tensor(), needs_input_grad(1) ? dk : Tensor()};
  }
  void release_saved() override { positions.reset(); }
  SavedTensor positions;  // contiguous i64
  double theta = 0;
};

}  // namespace

Tensor swiglu(const Tensor& gate, const Tensor& up) {
  return gated_product_op("swiglu", "gate", "up", UnaryOp::silu, gate, up);
}

Tensor gated_output(const Tensor& gate_pre, const Tensor& attn) {
  return gated_product_op("gated_output", "gate_pre", "attn", UnaryOp::sigmoid, gate_pre, attn);
}

AddRmsNorm add_rms_norm(const Tensor& x, const Tensor& residual, const Tensor& weight, double eps) {
  check_same_device("add_rms_norm", {&x, &residual});
  check_same_dtype("add_rms_norm", {&x, &residual});
  check_norm_inputs("add_rms_norm", x, weight, Tensor(), eps);
  PONDER_CHECK(x.shape() == residual.shape(), ShapeError, "add_rms_norm: x ", x.shape(), " and residual ",
               residual.shape(), " must have the same shape");
  Tensor sum = Tensor::empty(x.shape(), x.options()), normed = Tensor::empty(x.shape(), x.options());
  Tensor rstd = empty_norm_stats(x);
  Tensor w = weight.defined() ? backend::contiguous(weight) : Tensor();
  PONDER_DISPATCH(x.device(), add_rms_norm_forward, sum, normed, rstd, backend::contiguous(x),
                  backend::contiguous(residual), w, eps);
  if (auto node = make_node<AddRmsNormBackward>({&x, &residual, &weight})) {
    node->sum = kept_is_output(w) ? normed : sum;
    node->weight = w;
    node->rstd = rstd;
    set_history(sum, node);
    set_history(normed, node);
  }
  return {sum, normed};
}

RopeQK rope_qk(const Tensor& q, const Tensor& k, const Tensor& positions, double theta) {
  check_rope_inputs("rope_qk", q, positions, theta);
  check_rope_inputs("rope_qk", k, positions, theta);
  check_same_dtype("rope_qk", {&q, &k});
  PONDER_CHECK(q.shape().back() == k.shape().back(), ShapeError, "rope_qk: q ", q.shape(), " and k ", k.shape(),
               " must have the same head dimension");
  Tensor index = rope_positions(positions);
  Tensor out_q = Tensor::empty(q.shape(), q.options()), out_k = Tensor::empty(k.shape(), k.options());
  PONDER_DISPATCH(q.device(), rope_qk, out_q, out_k, backend::contiguous(q), backend::contiguous(k), index, theta,
                  /*inverse=*/false);
  if (auto node = make_node<RopeQKBackward>({&q, &k})) {
    node->positions = index;
    node->theta = theta;
    set_history(out_q, node);
    set_history(out_k, node);
  }
  return {out_q, out_k};
}

}  // namespace ponder
