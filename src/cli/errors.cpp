#include "cli/errors.h"

#include <cstdio>
#include <exception>
#include <filesystem>
#include <new>

#include "tensor/error.h"

namespace ponder::cli {

int guarded(const std::function<int(Phase&)>& body) {
  Phase phase;
  try {
    return body(phase);
  } catch (const Error& e) {
    if (!phase.is_silent()) std::fprintf(stderr, "ponder: %s\n", e.what());
    return phase.is_running() ? 1 : 2;
  } catch (const std::filesystem::filesystem_error& e) {
    std::fprintf(stderr, "ponder: %s\n", e.what());
    return phase.is_running() ? 1 : 2;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "ponder: out of host memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ponder: internal error: %s\n", e.what());
    return 1;
  }
}

}  // namespace ponder::cli
