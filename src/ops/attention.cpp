#include "ops/attention.h"

#include <algorithm>
#include <vector>

#include "backend/cpu/attention.h"
#include "backend/cpu/fused.h"
#include "backend/cuda/attention.h"
#include "backend/cuda/fused.h"
#include "backend/kernels.h"
#include "ops/op_support.h"

namespace ponder {
using namespace ops_detail;

namespace {

struct AttentionBackward final : Node {
  const char* name() const override { return "attention"; }
  TensorList apply(TensorList&& g) override {
    const Tensor& qv = q.get(name());
    const Tensor& kv = k.get(name());
    const Tensor& vv = v.get(name());
    Tensor dq = Tensor::empty(qv.shape(), qv.options());
    Tensor dk = Tensor::empty(kv.shape(), kv.options());
    Tensor dv = Tensor::empty(vv.shape(), vv.options());
    PONDER_DISPATCH(qv.device(), attention_backward, dq, dk, dv, backend::contiguous(g[0]), qv, kv, vv,
                    out.get(name()), lse.get(name()), spec, scale);
    // rotary_attention: those are the gradients of the rotated q and k; rotating them back by the
    // same angles (the transpose) gives those of its inputs.
    if (theta > 0) {
      PONDER_DISPATCH(qv.device(), rope_qk, dq, dk, dq, dk, positions.get(name()), theta, /*inverse=*/true);
    }
    return {needs_input_grad(0) ? dq : Tensor(), needs_input_grad(1) ? dk : Tensor(),
            needs_input_grad(2) ? dv : Tensor()};
  }
  void release_saved() override {
    q.reset();
    k.reset();
    v.reset();
    out.reset();
    lse.reset();
    positions.reset();
  }
  SavedTensor q, k, v, out, lse;  // q and k as attended to: rotated by rotary_attention
  AttentionSpec spec;
  double scale = 1.0;
  SavedTensor positions;  // rotary_attention's (contiguous i64) and its theta; theta 0: attention
  double theta = 0;
};

void check_operands(const Tensor& q, const Tensor& k, const Tensor& v) {
  check_same_device("attention", {&q, &k, &v});
  check_same_dtype("attention", {&q, &k, &v});
  check_floating("attention", q);
  PONDER_CHECK(q.dim() == 3 && k.dim() == 3 && v.dim() == 3, ShapeError,
               "attention: q, k, v must have rank 3 [tokens, heads, head_dim], got q ", describe(q), ", k ",
               describe(k), ", v ", describe(v));
  PONDER_CHECK(k.shape() == v.shape(), ShapeError, "attention: k ", describe(k), " and v ", describe(v),
               " must have the same shape");
  PONDER_CHECK(q.size(0) == k.size(0), ShapeError, "attention: q ", describe(q), " and k ", describe(k),
               " differ in token count");
  PONDER_CHECK(q.size(2) == k.size(2), ShapeError, "attention: q ", describe(q), " and k ", describe(k),
               " differ in head_dim");
  PONDER_CHECK(k.size(1) > 0 && q.size(1) % k.size(1) == 0, ShapeError, "attention: ", q.size(1),
               " query heads are not a multiple of ", k.size(1), " kv heads (q ", describe(q), ", k ",
               describe(k), ")");
}

// Checks that a spec tensor (cu_seqlens or prefix_len) is a 1-D i32 tensor beside q.
void check_index_tensor(const char* what, const Tensor& t, const Tensor& q) {
  PONDER_CHECK(t.defined(), ValueError, "attention: spec.", what, " is undefined");
  PONDER_CHECK(t.dtype() == DType::i32, DTypeError, "attention: ", what, " must be i32, got ", describe(t));
  PONDER_CHECK(t.device() == q.device(), DeviceError, "attention: ", what, " ", describe(t),
               " is not on the device of q ", describe(q));
  PONDER_CHECK(t.dim() == 1, ShapeError, "attention: ", what, " must be 1-D, got ", describe(t));
}

// The spec tensors' metadata: i32, 1-D, beside q, one prefix length per sample. Reads no values.
void check_spec_tensors(const AttentionSpec& spec, const Tensor& q) {
  check_index_tensor("cu_seqlens", spec.cu_seqlens, q);
  PONDER_CHECK(spec.cu_seqlens.size(0) >= 1, ShapeError, "attention: cu_seqlens ", describe(spec.cu_seqlens),
               " needs at least one entry (the leading 0)");
  if (spec.mask != AttentionMask::prefix_lm) return;
  const int64_t samples = spec.cu_seqlens.size(0) - 1;
  PONDER_CHECK(spec.prefix_len.defined(), ValueError, "attention: prefix_lm needs spec.prefix_len (one prefix "
               "length per sample)");
  check_index_tensor("prefix_len", spec.prefix_len, q);
  PONDER_CHECK(spec.prefix_len.size(0) == samples, ShapeError, "attention: prefix_len ", describe(spec.prefix_len),
               " must have one entry per sample (", samples, " samples)");
}

// The sample boundaries, checked against q's token count.
std::vector<int32_t> checked_cu_seqlens(const Tensor& cu_seqlens, const Tensor& q) {
  std::vector<int32_t> cu = cu_seqlens.to_vector<int32_t>();
  PONDER_CHECK(cu[0] == 0, ValueError, "attention: cu_seqlens must start at 0, got ", cu[0]);
  for (size_t i = 1; i < cu.size(); ++i) {
    PONDER_CHECK(cu[i] >= cu[i - 1], ValueError, "attention: cu_seqlens decreases at index ", i, " (",
                 cu[i - 1], " -> ", cu[i], ")");
  }
  PONDER_CHECK(cu.back() == q.size(0), ValueError, "attention: cu_seqlens ends at ", cu.back(), " but q has ",
               q.size(0), " tokens");
  return cu;
}

void check_prefix_values(const Tensor& prefix_len, const std::vector<int32_t>& cu) {
  std::vector<int32_t> prefix = prefix_len.to_vector<int32_t>();
  for (size_t s = 0; s < prefix.size(); ++s) {
    const int32_t len = cu[s + 1] - cu[s];
    PONDER_CHECK(prefix[s] >= 0 && prefix[s] <= len, ValueError, "attention: prefix_len[", s, "] = ",
                 prefix[s], " is outside [0, ", len, "] (sample ", s, " has ", len, " tokens)");
  }
}

// Validates the spec. On the CPU the boundaries and prefixes are read and checked. On a GPU only the
// metadata is: reading cu_seqlens back would stall every call, the batch builder (data::pack_rows)
// validates the values on the host, and the CUDA kernels stay in bounds whatever the values
// (backend/cuda/attention.h).
void check_spec(const AttentionSpec& spec, const Tensor& q) {
  check_spec_tensors(spec, q);
  if (q.is_cuda()) return;
  std::vector<int32_t> cu = checked_cu_seqlens(spec.cu_seqlens, q);
  if (spec.mask == AttentionMask::prefix_lm) check_prefix_values(spec.prefix_len, cu);
}

// Attention over qa, ka, va (contiguous: q, k, v themselves, or their rotations), recorded as the
// backward of q, k and v; `theta` > 0 says that qa and ka are q and k rotated by `positions`.
Tensor attend_recorded(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& qa, const Tensor& ka,
                       const Tensor& va, const AttentionSpec& spec, double scale, const Tensor& positions,
                       double theta) {
  Tensor out = Tensor::empty(qa.shape(), qa.options());
  // Log-sum-exp of each score row, in f32 for f32/bf16 and in f64 for f64.
  Tensor lse = Tensor::empty({qa.size(1), qa.size(0)},
                             {qa.dtype() == DType::f64 ? DType::f64 : DType::f32, qa.device()});
  PONDER_DISPATCH(qa.device(), attention_forward, out, lse, qa, ka, va, spec, scale);
  if (auto node = make_node<AttentionBackward>({&q, &k, &v})) {
    node->q = qa;
    node->k = ka;
    node->v = va;
    node->out = out;
    node->lse = lse;
    node->spec = spec;
    node->scale = scale;
    if (theta > 0) {
      node->positions = positions;
      node->theta = theta;
    }
    set_history(out, node);
  }
  return out;
}

}  // namespace

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionSpec& spec, double scale) {
  check_operands(q, k, v);
  check_spec(spec, q);
  return attend_recorded(q, k, v, backend::contiguous(q), backend::contiguous(k), backend::contiguous(v), spec, scale,
                         Tensor(), 0);
}

Tensor rotary_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& positions, double theta,
                        const AttentionSpec& spec, double scale) {
  check_operands(q, k, v);
  check_rope_inputs("rotary_attention", q, positions, theta);
  check_spec(spec, q);
  const Tensor index = rope_positions(positions);
  Tensor rotated_q = Tensor::empty(q.shape(), q.options()), rotated_k = Tensor::empty(k.shape(), k.options());
  PONDER_DISPATCH(q.device(), rope_qk, rotated_q, rotated_k, backend::contiguous(q), backend::contiguous(k), index,
                  theta, /*inverse=*/false);
  return attend_recorded(q, k, v, rotated_q, rotated_k, backend::contiguous(v), spec, scale, index, theta);
}

}  // namespace ponder
