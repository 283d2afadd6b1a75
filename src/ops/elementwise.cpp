#include "ops/elementwise.h"

#include "backend/cpu/elementwise.h"
#include "backend/cuda/elementwise.h"
#include "backend/kernels.h"
#include "ops/op_support.h"

namespace ponder {
using namespace ops_detail;
using backend::BinaryOp;
using backend::CompareOp;
using backend::UnaryOp;

namespace {

// ---- unary: y = f(x), dx = g * f'(x) from the shared math table ----
struct UnaryBackward final : Node {
  UnaryBackward(UnaryOp op, double alpha) : op(op), alpha(alpha) {}
  const char* name() const override { return backend::unary_name(op); }
  TensorList apply(TensorList&& g) override {
    const Tensor& xv = x.get(name());
    Tensor gx = Tensor::empty(xv.shape(), xv.options());
    PONDER_DISPATCH(xv.device(), unary_backward, op, gx, xv, g[0], alpha);
    return {gx};
  }
  void release_saved() override { x.reset(); }
  UnaryOp op;
  double alpha;
  SavedTensor x;
};

Tensor unary(UnaryOp op, const Tensor& x, double alpha = 0.0) {
  const char* name = backend::unary_name(op);
  check_defined(name, {&x});
  check_floating(name, x);
  Tensor out = Tensor::empty(x.shape(), x.options());
  PONDER_DISPATCH(x.device(), unary, op, out, x, alpha);
  if (auto node = make_node<UnaryBackward>({&x}, op, alpha)) {
    node->x = x;
    set_history(out, node);
  }
  return out;
}

// ---- binary with broadcasting ----
const char* binary_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::add: return "add";
    case BinaryOp::sub: return "sub";
    case BinaryOp::mul: return "mul";
    case BinaryOp::div: return "div";
    case BinaryOp::maximum: return "maximum";
    case BinaryOp::minimum: return "minimum";
  }
  return "binary";
}

struct BinaryBackward final : Node {
  explicit BinaryBackward(BinaryOp op) : op(op) {}
  const char* name() const override { return binary_name(op); }
  TensorList apply(TensorList&& grads) override {
    const Tensor& g = grads[0];
    Tensor ga, gb;
    switch (op) {
      case BinaryOp::add:
        ga = g;
        gb = g;
        break;
      case BinaryOp::sub:
        ga = g;
        if (needs_input_grad(1)) gb = neg(g);
        break;
      case BinaryOp::mul:
        if (needs_input_grad(0)) ga = g * b.get(name());
        if (needs_input_grad(1)) gb = g * a.get(name());
        break;
      case BinaryOp::div: {
        const Tensor& bv = b.get(name());
        if (needs_input_grad(0)) ga = g / bv;
        if (needs_input_grad(1)) gb = neg(g * a.get(name()) / (bv * bv));
        break;
      }
      case BinaryOp::maximum:
      case BinaryOp::minimum: {
        // Ties send the gradient to a, as the forward picks a.
        Tensor pick_a = op == BinaryOp::maximum ? ge(a.get(name()), b.get(name()))
                                                : le(a.get(name()), b.get(name()));
        Tensor zero = scalar_like(0.0, g);
        if (needs_input_grad(0)) ga = where(pick_a, g, zero);
        if (needs_input_grad(1)) gb = where(pick_a, zero, g);
        break;
      }
    }
    return {needs_input_grad(0) ? sum_to(ga, a_shape) : Tensor(),
            needs_input_grad(1) ? sum_to(gb, b_shape) : Tensor()};
  }
  void release_saved() override {
    a.reset();
    b.reset();
  }
  BinaryOp op;
  Shape a_shape, b_shape;
  SavedTensor a, b;
};

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = binary_name(op);
  check_same_device(name, {&a, &b});
  check_same_dtype(name, {&a, &b});
  PONDER_CHECK(op != BinaryOp::div || a.is_floating_point(), DTypeError,
               "div: integer division is not supported, got ", describe(a));
  Shape shape = broadcast_shapes(name, a.shape(), b.shape());
  Tensor out = Tensor::empty(shape, a.options());
  PONDER_DISPATCH(a.device(), binary, op, out, broadcast_view(a, shape), broadcast_view(b, shape));
  if (auto node = make_node<BinaryBackward>({&a, &b}, op)) {
    node->a_shape = a.shape();
    node->b_shape = b.shape();
    bool keeps_operands = op != BinaryOp::add && op != BinaryOp::sub;
    if (keeps_operands) {
      node->a = a;
      node->b = b;
    }
    set_history(out, node);
  }
  return out;
}

Tensor comparison(CompareOp op, const char* name, const Tensor& a, const Tensor& b) {
  check_same_device(name, {&a, &b});
  check_same_dtype(name, {&a, &b});
  Shape shape = broadcast_shapes(name, a.shape(), b.shape());
  Tensor out = Tensor::empty(shape, {DType::u8, a.device()});
  PONDER_DISPATCH(a.device(), compare, op, out, broadcast_view(a, shape), broadcast_view(b, shape));
  return out;
}

struct WhereBackward final : Node {
  const char* name() const override { return "where"; }
  TensorList apply(TensorList&& grads) override {
    const Tensor& g = grads[0];
    const Tensor& c = cond.get(name());
    Tensor zero = scalar_like(0.0, g);
    return {Tensor(), needs_input_grad(1) ? sum_to(where(c, g, zero), a_shape) : Tensor(),
            needs_input_grad(2) ? sum_to(where(c, zero, g), b_shape) : Tensor()};
  }
  void release_saved() override { cond.reset(); }
  SavedTensor cond;
  Shape a_shape, b_shape;
};

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary(BinaryOp::add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary(BinaryOp::sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary(BinaryOp::mul, a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return binary(BinaryOp::div, a, b); }
Tensor maximum(const Tensor& a, const Tensor& b) { return binary(BinaryOp::maximum, a, b); }
Tensor minimum(const Tensor& a, const Tensor& b) { return binary(BinaryOp::minimum, a, b); }

Tensor neg(const Tensor& x) { return unary(UnaryOp::neg, x); }
Tensor exp(const Tensor& x) { return unary(UnaryOp::exp, x); }
Tensor log(const Tensor& x) { return unary(UnaryOp::log, x); }
Tensor sqrt(const Tensor& x) { return unary(UnaryOp::sqrt, x); }
Tensor rsqrt(const Tensor& x) { return unary(UnaryOp::rsqrt, x); }
Tensor abs(const Tensor& x) { return unary(UnaryOp::abs, x); }
Tensor tanh(const Tensor& x) { return unary(UnaryOp::tanh, x); }
Tensor sigmoid(const Tensor& x) { return unary(UnaryOp::sigmoid, x); }
Tensor silu(const Tensor& x) { return unary(UnaryOp::silu, x); }
Tensor gelu(const Tensor& x) { return unary(UnaryOp::gelu, x); }
Tensor relu(const Tensor& x) { return unary(UnaryOp::relu, x); }
Tensor relu2(const Tensor& x) { return unary(UnaryOp::relu2, x); }
Tensor square(const Tensor& x) { return unary(UnaryOp::square, x); }
Tensor sin(const Tensor& x) { return unary(UnaryOp::sin, x); }
Tensor cos(const Tensor& x) { return unary(UnaryOp::cos, x); }
Tensor pow(const Tensor& x, double exponent) { return unary(UnaryOp::pow, x, exponent); }

Tensor eq(const Tensor& a, const Tensor& b) { return comparison(CompareOp::eq, "eq", a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return comparison(CompareOp::ne, "ne", a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return comparison(CompareOp::lt, "lt", a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return comparison(CompareOp::le, "le", a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return comparison(CompareOp::gt, "gt", a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return comparison(CompareOp::ge, "ge", a, b); }

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_same_device("where", {&cond, &a, &b});
  check_same_dtype("where", {&a, &b});
  PONDER_CHECK(cond.dtype() == DType::u8, DTypeError, "where: condition must be u8, got ", describe(cond));
  Shape shape = broadcast_shapes("where", broadcast_shapes("where", cond.shape(), a.shape()), b.shape());
  Tensor out = Tensor::empty(shape, a.options());
  PONDER_DISPATCH(a.device(), where, out, broadcast_view(cond, shape), broadcast_view(a, shape),
                  broadcast_view(b, shape));
  if (auto node = make_node<WhereBackward>({&cond, &a, &b})) {
    node->cond = cond;
    node->a_shape = a.shape();
    node->b_shape = b.shape();
    set_history(out, node);
  }
  return out;
}

Tensor scalar_like(double value, const Tensor& t) {
  Tensor s = Tensor::empty({}, t.options());
  backend::fill(s, value);
  return s;
}

}  // namespace ponder
