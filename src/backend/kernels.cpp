#include "backend/kernels.h"

#include "backend/cpu/elementwise.h"
#include "backend/cuda/elementwise.h"
#include "backend/dispatch.h"
#include "tensor/cuda_memory.h"

namespace ponder::backend {
namespace {

size_t nbytes_of(const Tensor& t) { return static_cast<size_t>(t.numel()) * element_size(t.dtype()); }

// Copies between devices move raw contiguous bytes; layout and dtype changes happen on the
// side that has the data (the GPU's copy kernel, or the CPU's before an upload).
void copy_across(const Tensor& dst, const Tensor& src) {
  bool same_layout = dst.dtype() == src.dtype() && dst.is_contiguous() && src.is_contiguous();
  if (same_layout) {
    cuda_copy_bytes(dst.data_ptr(), dst.device(), src.data_ptr(), src.device(), nbytes_of(dst));
    return;
  }
  if (src.is_cuda() && src.device() == dst.device()) {
    PONDER_DISPATCH(dst.device(), copy, dst, src);
    return;
  }
  // Make the source contiguous in the destination's dtype where it lives, then move the bytes.
  Tensor packed = Tensor::empty(src.shape(), {dst.dtype(), src.device()});
  copy(packed, src);
  Tensor landed = dst.is_contiguous() ? dst : Tensor::empty(dst.shape(), dst.options());
  cuda_copy_bytes(landed.data_ptr(), landed.device(), packed.data_ptr(), packed.device(), nbytes_of(landed));
  if (!landed.is_same(dst)) copy(dst, landed);
}

}  // namespace

void copy(const Tensor& dst, const Tensor& src) {
  PONDER_CHECK(dst.shape() == src.shape(), ShapeError, "copy: destination ", describe(dst),
               " and source ", describe(src), " differ in shape");
  if (dst.is_cpu() && src.is_cpu()) {
    cpu::copy(dst, src);
  } else {
    copy_across(dst, src);
  }
}

void fill(const Tensor& dst, double value) { PONDER_DISPATCH(dst.device(), fill, dst, value); }

void add_into(const Tensor& dst, const Tensor& src, const Tensor& scale) {
  PONDER_CHECK(dst.shape() == src.shape() && dst.device() == src.device(), ShapeError,
               "add_into: destination ", describe(dst), " and source ", describe(src), " differ");
  PONDER_CHECK(!scale.defined() || (scale.numel() == 1 && scale.dtype() == dst.dtype() &&
                                    scale.device() == dst.device() && scale.is_contiguous()),
               ValueError, "add_into: the scale must be one element of the destination's dtype and device, got ",
               describe(scale), " for ", describe(dst));
  PONDER_DISPATCH(dst.device(), add_into, dst, src, scale);
}

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = Tensor::empty(a.shape(), a.options());
  PONDER_DISPATCH(a.device(), binary, BinaryOp::add, out, a, b);
  return out;
}

Tensor contiguous(const Tensor& t) {
  if (t.is_contiguous()) return t;
  Tensor out = Tensor::empty(t.shape(), t.options());
  copy(out, t);
  return out;
}

Tensor transposed(const Tensor& matrix) {
  return matrix.as_strided({matrix.size(1), matrix.size(0)}, {matrix.stride(1), matrix.stride(0)}, matrix.offset());
}

Tensor repeated_rows(const Tensor& vector, int64_t rows) {
  return vector.as_strided({rows, vector.size(0)}, {0, vector.stride(0)}, vector.offset());
}

}  // namespace ponder::backend
