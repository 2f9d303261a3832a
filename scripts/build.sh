#!/usr/bin/env bash
# Configures and builds xgrad (Release) into build/. Extra arguments go to cmake's configure step. XGRAD_TARGET=name
# builds one target and what it needs (scripts/run_mnist.sh builds only `mnist`); the default is everything.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build build -j"$(nproc)" ${XGRAD_TARGET:+--target "$XGRAD_TARGET"}
