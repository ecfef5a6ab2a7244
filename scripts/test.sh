#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (unit, integration,
# CLI, Python interop) with CTest. This is the command CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --tests
scripts/build.sh --all "$@"
cd "${BUILD_DIR:-build}"
ctest --output-on-failure -j2 --timeout 300
