#!/usr/bin/env bash
# Configures and builds drunc-zmq (Release) in ./build, or in $BUILD_DIR.
# Extra arguments go to cmake's configure step, e.g. -DDRUNC_SANITIZE=ON.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-Release} "$@"
cmake --build "$build_dir" -j2
