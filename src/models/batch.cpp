#include "models/batch.h"

namespace ponder::models {

PackedBatch to_device(const PackedBatch& batch, Device d) {
  if (batch.tokens.device() == d) return batch;
  PackedBatch out = batch;
  out.tokens = batch.tokens.to(d);
  out.positions = batch.positions.to(d);
  out.labels = batch.labels.to(d);
  out.attn.cu_seqlens = batch.attn.cu_seqlens.to(d);
  if (batch.attn.prefix_len.defined()) out.attn.prefix_len = batch.attn.prefix_len.to(d);
  return out;
}

}  // namespace ponder::models
