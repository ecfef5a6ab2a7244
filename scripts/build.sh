#!/usr/bin/env bash
# Configures and builds drunc-zmq (Release) in ./build, or in $BUILD_DIR.
# By default only what the demo needs: drunc-broker and drunc-pm.
#   --tests  also the tests, and all that `cmake --install` installs (the
#            client library, man pages): everything but drunc-bench
#   --bench  also drunc-bench (bench/)
#   --all    both
# Other arguments go to cmake's configure step and win over these, e.g.
# -DDRUNC_SANITIZE=ON or -DDRUNC_BUILD_BENCH=OFF.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
tests=OFF
bench=OFF
cmake_args=()
for argument in "$@"; do
  case "$argument" in
    --tests) tests=ON ;;
    --bench) bench=ON ;;
    --all) tests=ON; bench=ON ;;
    *) cmake_args+=("$argument") ;;
  esac
done
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-Release} \
  -DDRUNC_BUILD_TESTS=$tests -DDRUNC_BUILD_BENCH=$bench "${cmake_args[@]}"
if [ $tests = ON ] || [ $bench = ON ]; then
  cmake --build "$build_dir" -j2
else
  cmake --build "$build_dir" -j2 --target drunc-broker drunc-pm
fi
