#!/usr/bin/env bash
# The main job: set up, build, fetch the digits, then train and evaluate the seed network with the book's defaults
# (10 epochs, mini-batch 10, learning rate 0.1). Extra arguments go to `mnist` (see `build/models/mnist --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --data
XGRAD_TARGET=mnist bash scripts/build.sh   # only the executable: the tests are scripts/test.sh
bash scripts/fetch_mnist.sh
export OPENBLAS_NUM_THREADS=1
exec build/models/mnist "$@"
