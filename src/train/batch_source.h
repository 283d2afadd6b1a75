// Where a trainer's micro-batches come from: shards through the data loader, or a synthetic task
// generated on the fly. A source is resumable: state() captures its cursor, restore() continues
// from it, so a resumed run sees exactly the batches the uninterrupted run would have seen.
#pragma once

#include <string>

#include "models/batch.h"

namespace ponder::train {

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  // The next micro-batch of this rank, on the CPU.
  virtual models::PackedBatch next() = 0;
  virtual std::string state() const = 0;
  virtual void restore(const std::string& state) = 0;
};

}  // namespace ponder::train
