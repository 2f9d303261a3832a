#!/usr/bin/env bash
# Installs xgrad from build/ into build/install and builds examples/ as a separate CMake project against it
# (find_package(xgrad CONFIG REQUIRED), xgrad::xgrad), then runs the examples as tests. Needs scripts/build.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --install build --prefix build/install >/dev/null
cmake -S examples -B build/examples -DCMAKE_PREFIX_PATH="$PWD/build/install" >/dev/null
cmake --build build/examples -j"$(nproc)" >/dev/null
cd build/examples && ctest --output-on-failure
