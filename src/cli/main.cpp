// The ponder command line.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/demo.h"
#include "tensor/error.h"

#ifndef PONDER_VERSION
#define PONDER_VERSION "unknown"
#endif

int main(int argc, char** argv) {
  CLI::App app{"ponder: train small reasoning models (HRM-Text, Attractor, SST, Llama baseline)"};
  app.set_version_flag("--version", std::string("ponder ") + PONDER_VERSION);
  app.require_subcommand(1);

  ponder::cli::DemoOptions demo;
  CLI::App* demo_cmd = app.add_subcommand("demo", "Train a tiny model on the CPU and show the loss falling");
  demo_cmd->add_option("--steps", demo.steps, "Optimizer steps")->check(CLI::Range(1, 100000000));
  demo_cmd->add_option("--seed", demo.seed, "Random seed");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // usage errors exit with 2
  }
  try {
    if (*demo_cmd) return ponder::cli::run_demo(demo);
  } catch (const ponder::Error& e) {
    std::fprintf(stderr, "ponder: %s\n", e.what());
    return 1;
  }
  return 0;
}
