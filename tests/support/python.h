// Running the PyTorch reference scripts of tests/parity from C++ tests.
#pragma once

#include <filesystem>
#include <string>

namespace ponder::testing {

// A fresh directory for one test's exchange files.
std::filesystem::path scratch_dir(const std::string& name);

// Runs tests/parity/<script> with the configured python (the one with torch) and the given
// arguments; returns the exit status and fills `output` with its stdout+stderr.
int run_python(const std::string& script, const std::string& args, std::string& output);

}  // namespace ponder::testing
