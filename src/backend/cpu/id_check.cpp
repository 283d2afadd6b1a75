#include "backend/cpu/id_check.h"

namespace ponder::backend::cpu {
namespace {

template <class I>
void check_range(IdCheck check, const I* ids, int64_t n, int64_t bound, std::optional<int64_t> allowed) {
  for (int64_t i = 0; i < n; ++i) {
    const int64_t id = ids[i];
    if ((id < 0 || id >= bound) && id != allowed) fail<ValueError>(id_check_message(check, id, i, bound));
  }
}

}  // namespace

void check_ids(IdCheck check, const Tensor& ids, int64_t bound, std::optional<int64_t> allowed) {
  if (ids.dtype() == DType::i32) return check_range(check, ids.data<int32_t>(), ids.numel(), bound, allowed);
  check_range(check, ids.data<int64_t>(), ids.numel(), bound, allowed);
}

}  // namespace ponder::backend::cpu
