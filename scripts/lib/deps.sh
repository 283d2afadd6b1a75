# Dependency check and install, shared by scripts/quickstart and scripts/test.
# Installs (apt-get) only what is actually missing, so a machine that already has everything —
# including one without network access — goes straight to the build.

# Probes a header in the usual include roots.
have_header() {
  local rel
  for rel in "$@"; do
    for root in /usr/include /usr/local/include /usr/include/x86_64-linux-gnu /usr/include/hdf5/serial \
                /usr/lib/x86_64-linux-gnu/openmpi/include /usr/include/openmpi /usr/include/aarch64-linux-gnu; do
      [ -e "$root/$rel" ] && return 0
    done
  done
  return 1
}

have_cmd() { command -v "$1" >/dev/null 2>&1; }

# cmake >= 3.25
have_cmake() {
  have_cmd cmake || return 1
  local v
  v=$(cmake --version | head -n1 | sed 's/[^0-9.]*\([0-9.]*\).*/\1/')
  [ "$(printf '%s\n3.25\n' "$v" | sort -V | head -n1)" = "3.25" ]
}

# A python3 that imports torch and numpy (the PyTorch parity tests need it).
have_torch() {
  local py
  for py in python3 /usr/bin/python3; do
    have_cmd "$py" && "$py" -c 'import torch, numpy' >/dev/null 2>&1 && return 0
  done
  return 1
}

# A python3 (the one with torch) that imports the module.
have_python_module() {
  local py
  for py in python3 /usr/bin/python3; do
    have_cmd "$py" && "$py" -c 'import torch' >/dev/null 2>&1 && "$py" -c "import $1" >/dev/null 2>&1 && return 0
  done
  return 1
}

missing_packages() {
  local m=()
  have_cmake || m+=(cmake)
  have_cmd ninja || m+=(ninja-build)
  have_cmd g++ || m+=(g++)
  have_header eigen3/Eigen/Core || m+=(libeigen3-dev)
  have_header yaml-cpp/yaml.h || m+=(libyaml-cpp-dev)
  have_header H5Cpp.h || m+=(libhdf5-dev)
  have_header CLI/CLI.hpp || m+=(libcli11-dev)
  have_header spdlog/spdlog.h || m+=(libspdlog-dev)
  have_header gtest/gtest.h || m+=(libgtest-dev)
  have_header mpi.h || m+=(libopenmpi-dev)
  have_cmd mpirun || m+=(openmpi-bin)
  have_header sentencepiece_processor.h || m+=(libsentencepiece-dev)
  have_header nlohmann/json.hpp || m+=(nlohmann-json3-dev)
  have_torch || m+=(python3-torch python3-numpy)
  have_python_module matplotlib || m+=(python3-matplotlib)
  echo "${m[@]}"
}

ensure_deps() {
  local missing
  missing=$(missing_packages)
  [ -z "$missing" ] && return 0
  echo "ponder: installing missing packages: $missing"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    have_cmd sudo || { echo "ponder: need root (or sudo) to install: $missing" >&2; return 1; }
    sudo="sudo"
  fi
  if ! have_cmd apt-get; then
    echo "ponder: apt-get not found; install these packages by hand: $missing" >&2
    return 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck disable=SC2086
  if ! { $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null; }; then
    echo "ponder: could not install: $missing (no network?)" >&2
    return 1
  fi
  missing=$(missing_packages)
  if [ -n "$missing" ]; then
    echo "ponder: still missing after install: $missing" >&2
    return 1
  fi
}

# Configures build/ once, then builds incrementally with every core.
build_ponder() {
  local root=$1
  shift
  if [ ! -f "$root/build/build.ninja" ]; then
    cmake -S "$root" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" || return 1
  fi
  cmake --build "$root/build" -j "$(nproc)"
}
