#include "backend/determinism.h"

#include <atomic>

namespace ponder::backend {
namespace {
std::atomic<bool> deterministic_mode{false};
}  // namespace

void set_deterministic(bool on) { deterministic_mode.store(on); }
bool deterministic() { return deterministic_mode.load(); }

}  // namespace ponder::backend
