#include "backend/id_check.h"

#include <array>
#include <exception>

#include "backend/cpu/id_check.h"
#include "backend/dispatch.h"
#if PONDER_WITH_CUDA
#include "backend/cuda/id_check.h"
#endif

namespace ponder::backend {
namespace {

thread_local bool deferred = false;

struct CheckWords {
  const char* op;
  const char* noun;
};
constexpr std::array<CheckWords, 3> kWords = {{
    {"embedding", "id"},                 // IdCheck::embedding_ids
    {"cross_entropy", "target"},         // IdCheck::cross_entropy_targets
    {"lm_head_cross_entropy", "target"}  // IdCheck::lm_head_targets
}};

}  // namespace

std::string id_check_message(IdCheck check, int64_t value, int64_t position, int64_t bound) {
  const CheckWords& w = kWords.at(static_cast<size_t>(check));
  return std::string(w.op) + ": " + w.noun + " " + std::to_string(value) + " at position " + std::to_string(position) +
         " is outside the vocabulary of " + std::to_string(bound);
}

void check_ids(IdCheck check, const Tensor& ids, int64_t bound, std::optional<int64_t> allowed) {
  PONDER_CHECK((ids.dtype() == DType::i32 || ids.dtype() == DType::i64) && ids.is_contiguous(), DTypeError,
               kWords.at(static_cast<size_t>(check)).op, ": ids must be contiguous i32 or i64, got ", describe(ids));
  if (ids.numel() == 0) return;
  PONDER_DISPATCH(ids.device(), check_ids, check, ids, bound, allowed);
}

DeferIdChecks::DeferIdChecks(Device device)
    : device_(device), previous_(deferred), exceptions_(std::uncaught_exceptions()) {
  deferred = true;
}

DeferIdChecks::~DeferIdChecks() {
  deferred = previous_;
#if PONDER_WITH_CUDA
  if (device_.is_cuda() && std::uncaught_exceptions() > exceptions_) cuda::clear_id_checks(device_.index);
#endif
}
bool id_checks_deferred() { return deferred; }

void raise_deferred_id_checks(Device device) {
#if PONDER_WITH_CUDA
  if (device.is_cuda()) cuda::raise_deferred_id_checks(device.index);
#else
  (void)device;
#endif
}

}  // namespace ponder::backend
