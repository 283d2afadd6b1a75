#include "support/python.h"

#include <unistd.h>

#include <array>
#include <cstdio>
#include <sys/wait.h>

namespace ponder::testing {

std::filesystem::path scratch_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() /
             ("ponder_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

int run_python(const std::string& script, const std::string& args, std::string& output) {
  const std::string python = PONDER_PYTHON;
  if (python.empty()) {
    output = "no python3 with torch and numpy was found when configuring; run scripts/test, "
             "which installs python3-torch";
    return -1;
  }
  std::string cmd = python + " " + PONDER_TESTS_DIR + "/parity/" + script + " " + args + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (!pipe) return -1;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) output.append(buf.data(), n);
  int status = ::pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace ponder::testing
