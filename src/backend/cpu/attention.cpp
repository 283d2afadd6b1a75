#include "backend/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include <Eigen/Core>

namespace ponder::backend::cpu {
namespace {

template <class A>
using Matrix = Eigen::Matrix<A, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class A>
using Column = Eigen::Matrix<A, Eigen::Dynamic, 1>;
// The log-sum-exp is kept in f64 for f64 inputs and in f32 otherwise.
template <class T>
using lse_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

// One packed sample: tokens [begin, begin + len), the first `prefix` of them a prefix_lm prefix.
struct Sample {
  int64_t begin, len, prefix;
};

std::vector<Sample> samples_of(const AttentionSpec& spec) {
  std::vector<int32_t> cu = spec.cu_seqlens.to_vector<int32_t>();
  std::vector<int32_t> prefix;
  if (spec.mask == AttentionMask::prefix_lm) prefix = spec.prefix_len.to_vector<int32_t>();
  std::vector<Sample> samples(cu.size() - 1);
  for (size_t s = 0; s + 1 < cu.size(); ++s) {
    samples[s] = {cu[s], cu[s + 1] - cu[s], prefix.empty() ? 0 : prefix[s]};
  }
  return samples;
}

// Every mask lets local query i see a leading run of keys, [0, visible_keys(i)) of its sample.
int64_t visible_keys(AttentionMask mask, const Sample& s, int64_t i) {
  switch (mask) {
    case AttentionMask::causal: return i + 1;
    case AttentionMask::bidirectional: return s.len;
    case AttentionMask::prefix_lm: return std::max(i + 1, s.prefix);
  }
  return 0;
}

// Head `head` of the rows of one sample in a contiguous [N, heads, dim] tensor.
struct HeadRows {
  const Sample& sample;
  int64_t head, heads, dim;
  int64_t offset(int64_t i) const { return ((sample.begin + i) * heads + head) * dim; }
};

template <class A, class T>
Matrix<A> load(const T* data, const HeadRows& rows) {
  Matrix<A> m(rows.sample.len, rows.dim);
  for (int64_t i = 0; i < rows.sample.len; ++i) {
    const T* p = data + rows.offset(i);
    for (int64_t d = 0; d < rows.dim; ++d) m(i, d) = A(compute_t<T>(p[d]));
  }
  return m;
}

template <class T, class A>
void store(T* data, const HeadRows& rows, const Matrix<A>& m) {
  for (int64_t i = 0; i < rows.sample.len; ++i) {
    T* p = data + rows.offset(i);
    for (int64_t d = 0; d < rows.dim; ++d) p[d] = T(compute_t<T>(m(i, d)));
  }
}

// Turns masked scores into probabilities in place, row max subtracted for stability; writes each
// row's log-sum-exp (m + log sum exp(s - m)).
template <class A, class L>
void softmax_rows(Matrix<A>& scores, L* lse, AttentionMask mask, const Sample& s) {
  for (int64_t i = 0; i < s.len; ++i) {
    const int64_t n = visible_keys(mask, s, i);
    auto row = scores.row(i);
    const A max = row.head(n).maxCoeff();
    row.head(n) = (row.head(n).array() - max).exp();
    const A total = row.head(n).sum();
    row.head(n) /= total;
    row.tail(s.len - n).setZero();
    lse[i] = L(max + std::log(total));
  }
}

// The forward probabilities again from the scores and the saved log-sum-exp: p = exp(s - lse).
template <class A, class L>
void probabilities_from_lse(Matrix<A>& scores, const L* lse, AttentionMask mask, const Sample& s) {
  for (int64_t i = 0; i < s.len; ++i) {
    const int64_t n = visible_keys(mask, s, i);
    auto row = scores.row(i);
    row.head(n) = (row.head(n).array() - A(lse[i])).exp();
    row.tail(s.len - n).setZero();
  }
}

struct Heads {
  int64_t tokens, q, kv, dim;
  int64_t group() const { return q / kv; }  // query heads per kv head
};

Heads heads_of(const Tensor& q, const Tensor& k) {
  return {q.size(0), q.size(1), k.size(1), q.size(2)};
}

// Threads pay off once the score products (about len^2 * dim per sample and query head) are large.
bool worth_threads(const std::vector<Sample>& samples, const Heads& h, int64_t items) {
  int64_t work = 0;
  for (const Sample& s : samples) work += s.len * s.len * h.dim * h.q;
  return items > 1 && work > 65536;
}

template <class T>
void forward_typed(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v,
                   const AttentionSpec& spec, double scale) {
  using A = acc_t<T>;
  const Heads h = heads_of(q, k);
  const std::vector<Sample> samples = samples_of(spec);
  const T *pq = q.data<T>(), *pk = k.data<T>(), *pv = v.data<T>();
  T* po = out.data<T>();
  lse_t<T>* pl = lse.data<lse_t<T>>();
  const int64_t items = static_cast<int64_t>(samples.size()) * h.q;
#pragma omp parallel for schedule(dynamic) if (worth_threads(samples, h, items))
  for (int64_t item = 0; item < items; ++item) {
    const Sample& s = samples[item / h.q];
    const int64_t head = item % h.q, kv_head = head / h.group();
    if (s.len == 0) continue;
    const HeadRows q_rows{s, head, h.q, h.dim}, kv_rows{s, kv_head, h.kv, h.dim};
    Matrix<A> p = load<A>(pq, q_rows) * load<A>(pk, kv_rows).transpose() * A(scale);
    softmax_rows(p, pl + head * h.tokens + s.begin, spec.mask, s);
    store(po, q_rows, Matrix<A>(p * load<A>(pv, kv_rows)));
  }
}

// Pointers of the backward operands, all of storage type T.
template <class T>
struct BackwardData {
  T *dq, *dk, *dv;
  const T *grad_out, *q, *k, *v, *out;
  const lse_t<T>* lse;
};

// Gradients for one sample and one kv head. With S = scale q k^T and P = softmax(S):
// dV = P^T dO, dP = dO V^T, D_i = rowsum(dO_i * O_i), dS = P * (dP - D_i), dQ = scale dS K,
// dK = scale dS^T Q. The query heads sharing the kv head add into dK and dV in a fixed order.
template <class T>
void backward_kv_head(const BackwardData<T>& data, const Heads& h, const Sample& s, int64_t kv_head,
                      AttentionMask mask, double scale) {
  using A = acc_t<T>;
  const HeadRows kv_rows{s, kv_head, h.kv, h.dim};
  const Matrix<A> k = load<A>(data.k, kv_rows), v = load<A>(data.v, kv_rows);
  Matrix<A> dk = Matrix<A>::Zero(s.len, h.dim), dv = Matrix<A>::Zero(s.len, h.dim);
  for (int64_t head = kv_head * h.group(); head < (kv_head + 1) * h.group(); ++head) {
    const HeadRows q_rows{s, head, h.q, h.dim};
    const Matrix<A> q = load<A>(data.q, q_rows), grad_out = load<A>(data.grad_out, q_rows);
    Matrix<A> p = q * k.transpose() * A(scale);
    probabilities_from_lse(p, data.lse + head * h.tokens + s.begin, mask, s);
    dv.noalias() += p.transpose() * grad_out;
    const Column<A> row_dot = (grad_out.array() * load<A>(data.out, q_rows).array()).rowwise().sum();
    const Matrix<A> dp = grad_out * v.transpose();
    const Matrix<A> ds = p.array() * (dp.array().colwise() - row_dot.array());
    store(data.dq, q_rows, Matrix<A>(ds * k * A(scale)));
    dk.noalias() += ds.transpose() * q;
  }
  store(data.dk, kv_rows, Matrix<A>(dk * A(scale)));
  store(data.dv, kv_rows, dv);
}

template <class T>
void backward_typed(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& grad_out,
                    const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                    const AttentionSpec& spec, double scale) {
  const Heads h = heads_of(q, k);
  const std::vector<Sample> samples = samples_of(spec);
  const BackwardData<T> data{dq.data<T>(),  dk.data<T>(), dv.data<T>(),  grad_out.data<T>(),
                             q.data<T>(),   k.data<T>(),  v.data<T>(),   out.data<T>(),
                             lse.data<lse_t<T>>()};
  // Every token lies in a sample of nonzero length, so the items together write every row of dq, dk, dv.
  const int64_t items = static_cast<int64_t>(samples.size()) * h.kv;
#pragma omp parallel for schedule(dynamic) if (worth_threads(samples, h, items))
  for (int64_t item = 0; item < items; ++item) {
    const Sample& s = samples[item / h.kv];
    if (s.len > 0) backward_kv_head(data, h, s, item % h.kv, spec.mask, scale);
  }
}

}  // namespace

void attention_forward(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k,
                       const Tensor& v, const AttentionSpec& spec, double scale) {
  visit_floating(q.dtype(), "attention_forward", [&](auto tag) {
    forward_typed<decltype(tag)>(out, lse, q, k, v, spec, scale);
  });
}

void attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& grad_out,
                        const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                        const Tensor& lse, const AttentionSpec& spec, double scale) {
  visit_floating(q.dtype(), "attention_backward", [&](auto tag) {
    backward_typed<decltype(tag)>(dq, dk, dv, grad_out, q, k, v, out, lse, spec, scale);
  });
}

}  // namespace ponder::backend::cpu
