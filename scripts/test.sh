#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite (ctest prints its summary line). Needs no network beyond apt.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
export OPENBLAS_NUM_THREADS=1
cd build && ctest --output-on-failure -j"$(nproc)"
