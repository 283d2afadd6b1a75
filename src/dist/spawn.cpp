#include "dist/spawn.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "dist/rendezvous.h"
#include "tensor/error.h"

namespace ponder::dist {
namespace {

std::vector<std::string> own_command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  for (size_t start = 0; start < all.size();) {
    const size_t end = all.find('\0', start);
    args.push_back(all.substr(start, end - start));
    start = end == std::string::npos ? all.size() : end + 1;
  }
  PONDER_CHECK(!args.empty(), Error, "--gpus: cannot read this process's command line");
  return args;
}

[[noreturn]] void exec_rank(const std::vector<std::string>& args, int rank, int ranks, int port, const std::string& job) {
  ::setenv("RANK", std::to_string(rank).c_str(), 1);
  ::setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
  ::setenv("WORLD_SIZE", std::to_string(ranks).c_str(), 1);
  ::setenv("LOCAL_WORLD_SIZE", std::to_string(ranks).c_str(), 1);
  ::setenv("MASTER_ADDR", "127.0.0.1", 1);
  ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
  ::setenv("PONDER_JOB_ID", job.c_str(), 1);
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  ::execv("/proc/self/exe", argv.data());
  ::_exit(127);
}

// Interrupts the parent's wait so that it passes a stop on to the ranks (a scheduler may signal
// only the parent).
void interrupt_wait(int) {}

int exit_status(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : 1; }

// "exited with status 1", "was killed by signal 9 (Killed)".
std::string how_it_ended(int status) {
  if (WIFSIGNALED(status)) {
    return "was killed by signal " + std::to_string(WTERMSIG(status)) + " (" + ::strsignal(WTERMSIG(status)) + ")";
  }
  return "exited with status " + std::to_string(exit_status(status));
}

// Stops the ranks still running: SIGTERM lets them save a checkpoint; SIGKILL after the grace period.
void stop_all(std::set<pid_t>& running) {
  for (pid_t p : running) ::kill(p, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!running.empty() && std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    const pid_t p = ::waitpid(-1, &status, WNOHANG);
    if (p > 0) {
      running.erase(p);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  for (pid_t p : running) ::kill(p, SIGKILL);
  for (pid_t p : running) ::waitpid(p, nullptr, 0);
  running.clear();
}

}  // namespace

int spawn_local_ranks(int ranks) {
  const std::vector<std::string> args = own_command_line();
  const int port = free_tcp_port();
  const std::string job = "ponder-" + std::to_string(::getpid()) + "-" + std::to_string(port);
  std::set<pid_t> running;
  std::map<pid_t, int> rank_of;
  for (int rank = 0; rank < ranks; ++rank) {
    const pid_t pid = ::fork();
    if (pid == 0) exec_rank(args, rank, ranks, port, job);
    if (pid < 0) {
      stop_all(running);
      fail<Error>("--gpus: cannot start rank ", rank);
    }
    running.insert(pid);
    rank_of[pid] = rank;
  }
  struct sigaction forward{};
  forward.sa_handler = interrupt_wait;  // no SA_RESTART: waitpid returns to pass the stop on
  ::sigaction(SIGTERM, &forward, nullptr);
  ::sigaction(SIGINT, &forward, nullptr);
  int result = 0;
  while (!running.empty()) {
    int status = 0;
    const pid_t p = ::waitpid(-1, &status, 0);
    if (p < 0 && errno == EINTR) {
      // SIGTERM, also after a terminal's SIGINT (which the ranks got too): a second SIGINT would
      // make them exit without saving.
      for (pid_t child : running) ::kill(child, SIGTERM);
      continue;
    }
    if (p < 0) break;
    running.erase(p);
    if (exit_status(status) != 0) {
      if (result == 0) {  // the first failure is the cause; the others follow from stopping them
        std::fprintf(stderr, "ponder: rank %d %s; stopping the other ranks\n", rank_of[p], how_it_ended(status).c_str());
      }
      result = exit_status(status);
      stop_all(running);
    }
  }
  return result;
}

}  // namespace ponder::dist
