// Range checks of the ids that index tables: token ids into an embedding, class targets into a
// loss. Each check reports the first bad id the way the CPU does ("embedding: id 70000 at
// position 5 is outside the vocabulary of 65536").
//
// On the CPU the ids are in host memory and a check throws at once. On a GPU a check is a kernel
// that records the first bad id of the batch in a small per-device record; reading that record
// back waits for the device. Outside a DeferIdChecks scope the check does so and throws at once.
// Inside one (the trainer's step) it only records: the step keeps no host synchronisation (and can
// be captured into a CUDA graph), the kernels that use the ids skip a bad one (they never read or
// write outside a table), and raise_deferred_id_checks, called where the step waits for its loss
// anyway and before the optimizer, throws the first recorded error.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "tensor/tensor.h"

namespace ponder::backend {

// Which ids a check is about; names the op and the noun of the message.
enum class IdCheck : int64_t { embedding_ids, cross_entropy_targets, lm_head_targets };

std::string id_check_message(IdCheck check, int64_t value, int64_t position, int64_t bound);

// Checks that every id of `ids` (i32 or i64, contiguous) is in [0, bound) or equals `allowed`.
void check_ids(IdCheck check, const Tensor& ids, int64_t bound, std::optional<int64_t> allowed = std::nullopt);

// While one is alive on this thread, GPU id checks record instead of waiting (see the top). Left
// by an exception, it clears what was recorded on `device`: an error the unwinding skipped past
// must not surface in a later, unrelated check.
class DeferIdChecks {
 public:
  explicit DeferIdChecks(Device device);
  ~DeferIdChecks();
  DeferIdChecks(const DeferIdChecks&) = delete;
  DeferIdChecks& operator=(const DeferIdChecks&) = delete;

 private:
  Device device_;
  bool previous_;
  int exceptions_;  // in flight at construction
};
bool id_checks_deferred();

// Throws the first id error recorded on `device` since the last raise, and clears the record.
// Waits for the device; nothing to do on the CPU.
void raise_deferred_id_checks(Device device);

}  // namespace ponder::backend
