#include "nn/kv_cache.h"

#include <algorithm>

#include "ops/elementwise.h"
#include "ops/inplace.h"
#include "ops/matmul.h"
#include "ops/softmax.h"
#include "ops/view.h"

namespace ponder::nn {

void KVCache::append(const Tensor& k, const Tensor& v) {
  PONDER_CHECK(k.dim() == 3 && k.shape() == v.shape(), ShapeError,
               "KVCache: keys and values must both be [tokens, kv_heads, head_dim], got ", describe(k), " and ",
               describe(v));
  if (k_.defined()) {
    PONDER_CHECK(k.size(1) == k_.size(1) && k.size(2) == k_.size(2), ShapeError, "KVCache: keys ", describe(k),
                 " do not match the cached ", describe(keys()));
  }
  const int64_t n = k.size(0);
  if (!k_.defined() || length_ + n > k_.size(0)) grow(length_ + n, k);
  copy_(narrow(k_, 0, length_, n), k);
  copy_(narrow(v_, 0, length_, n), v);
  length_ += n;
}

void KVCache::truncate(int64_t length) {
  PONDER_CHECK(length >= 0 && length <= length_, ValueError, "KVCache: cannot truncate ", length_, " tokens to ", length);
  length_ = length;
}

void KVCache::grow(int64_t needed, const Tensor& like) {
  const int64_t capacity = std::max(needed, k_.defined() ? 2 * k_.size(0) : int64_t(0));
  const Shape shape{capacity, like.size(1), like.size(2)};
  Tensor k = Tensor::empty(shape, like.options()), v = Tensor::empty(shape, like.options());
  if (length_ > 0) {
    copy_(narrow(k, 0, 0, length_), keys());
    copy_(narrow(v, 0, 0, length_), values());
  }
  k_ = k;
  v_ = v;
}

Tensor KVCache::keys() const {
  PONDER_CHECK(k_.defined(), ValueError, "KVCache: the cache is empty");
  return narrow(k_, 0, 0, length_);
}

Tensor KVCache::values() const {
  PONDER_CHECK(v_.defined(), ValueError, "KVCache: the cache is empty");
  return narrow(v_, 0, 0, length_);
}

Tensor attend_to_cache(const Tensor& q, const KVCache& cache, double scale) {
  const Tensor k = cache.keys(), v = cache.values();
  PONDER_CHECK(q.dim() == 3 && q.size(0) == 1 && q.size(2) == k.size(2), ShapeError,
               "attend_to_cache: q must be [1, heads, ", k.size(2), "], got ", describe(q));
  const int64_t heads = q.size(1), kv_heads = k.size(1), head_dim = q.size(2);
  PONDER_CHECK(heads % kv_heads == 0, ShapeError, "attend_to_cache: ", heads, " query heads are not a multiple of ",
               kv_heads, " kv heads");
  // The query heads sharing a kv head form the rows of one product: [kv_heads, group, head_dim].
  const Tensor grouped = reshape(q, {kv_heads, heads / kv_heads, head_dim}) * scale;
  const Tensor scores = matmul(grouped, permute(k, {1, 2, 0}));  // [kv_heads, group, length]
  return reshape(matmul(softmax(scores, -1), transpose(v, 0, 1)), {1, heads, head_dim});
}

}  // namespace ponder::nn
