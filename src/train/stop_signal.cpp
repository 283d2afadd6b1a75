#include "train/stop_signal.h"

#include <unistd.h>

#include <atomic>
#include <csignal>

namespace ponder::train {
namespace {

std::atomic<int> stops{0};

extern "C" void on_signal(int sig) {
  if (stops.fetch_add(1) >= 1 && sig == SIGINT) {
    static const char msg[] = "\nponder: second interrupt, exiting now\n";
    [[maybe_unused]] ssize_t n = ::write(2, msg, sizeof msg - 1);
    ::_exit(130);
  }
}

}  // namespace

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

bool stop_requested() { return stops.load() > 0; }
void request_stop() { stops.store(1); }
void clear_stop() { stops.store(0); }

}  // namespace ponder::train
