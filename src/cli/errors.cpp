#include "cli/errors.h"

#include <cstdio>
#include <exception>
#include <filesystem>
#include <new>
#include <thread>

#include "tensor/error.h"

namespace ponder::cli {

namespace {

// A rank other than 0 that rejects the job's input waits for rank 0, which rejects it too, to print
// the message and end the job (the launcher then stops this rank). Exiting at once would let the
// launcher abort the job before rank 0's line is out. Should the job outlive the wait (rank 0 found
// nothing wrong), the message is this rank's to print.
constexpr auto kWaitForRankZero = std::chrono::seconds(20);

int report(const Phase& phase, const char* what) {
  if (phase.defers_input_errors()) std::this_thread::sleep_for(kWaitForRankZero);
  std::fprintf(stderr, "ponder: %s\n", what);
  return phase.is_running() ? 1 : 2;
}

}  // namespace

int guarded(const std::function<int(Phase&)>& body) {
  Phase phase;
  try {
    return body(phase);
  } catch (const Error& e) {
    return report(phase, e.what());
  } catch (const std::filesystem::filesystem_error& e) {
    return report(phase, e.what());
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "ponder: out of host memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ponder: internal error: %s\n", e.what());
    return 1;
  }
}

}  // namespace ponder::cli
