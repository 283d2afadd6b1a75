// Graceful stopping: the first SIGINT or SIGTERM asks the trainer to stop after the current step
// (it then writes a checkpoint and exits 0); a second SIGINT exits at once, leaving the last
// complete checkpoint as it is.
#pragma once

namespace ponder::train {

// Installs the handlers (idempotent).
void install_stop_handlers();
bool stop_requested();
// For tests and for stopping from code.
void request_stop();
void clear_stop();

}  // namespace ponder::train
