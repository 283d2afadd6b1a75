// Embedding on the GPU: a row gather forward (ops::embedding checks the ids first); a backward that
// groups positions by id with a stable sort and sums each vocabulary row's gradients in increasing
// position (fp32).
#include "backend/cuda/embedding.h"
#include "kernels/ids.cuh"

namespace ponder::backend::cuda {

void embedding_forward(const Tensor& out, const Tensor& weight, const Tensor& ids) {
  const int64_t vocab = weight.size(0), d = weight.size(1);
  kernels::gather_rows(out, weight, ids, 1, ids.numel(), vocab, d * static_cast<int64_t>(element_size(weight.dtype())));
}

void embedding_backward(const Tensor& grad_weight, const Tensor& grad, const Tensor& ids) {
  const int64_t vocab = grad_weight.size(0), d = grad_weight.size(1);
  const kernels::IdBuckets buckets = kernels::bucket_by_id(ids, vocab);
  kernels::sum_buckets("embedding", grad_weight, grad, buckets, 1, vocab, ids.numel(), d, /*accumulate=*/false);
}

}  // namespace ponder::backend::cuda
