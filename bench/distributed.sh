#!/usr/bin/env bash
# Distributed training on this machine (docs/distributed.md): the gradient allreduce on 2 ranks, and training
# throughput of `mnist` on one process and under `mpirun -np 1` / `-np 2` (median over 3 epochs on the 10k digits),
# then the scaling model's projections (bench/scaling_model.py). Needs a build with MPI and the digits
# (scripts/fetch_mnist.sh); results go to bench/results/ (git-ignored). Both ranks share this machine's cores.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=bench/results
mkdir -p "$OUT"
export OPENBLAS_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
echo "=== MPI_Allreduce on 2 ranks (loopback, shared memory)"
mpirun -np 2 build/bench/xgrad_dist_bench --json "$OUT/allreduce_np2.json"
[ -f "$OUT/xgrad.json" ] || build/bench/xgrad_bench train --json "$OUT/xgrad.json" >/dev/null

echo "=== mnist training throughput, images/s (median of 3 epochs)"
rows=()
for spec in "seed 10" "seed 64" "deep 64"; do
  set -- $spec
  for launch in "plain" "np1" "np2"; do
    m="$OUT/dist_${1}_${2}_${launch}.jsonl"
    args=(--arch "$1" --batch-size "$2" --epochs 3 --quiet --metrics "$m")
    case $launch in
      plain) build/models/mnist "${args[@]}" >/dev/null ;;
      np1) mpirun -np 1 build/models/mnist "${args[@]}" >/dev/null ;;
      np2) mpirun -np 2 build/models/mnist "${args[@]}" >/dev/null ;;
    esac
    ips=$(python3 -c "import json,statistics,sys; print(round(statistics.median(json.loads(l)['train_images_per_second'] for l in open(sys.argv[1]))))" "$m")
    printf "%-5s batch %-3s %-6s %9s images/s\n" "$1" "$2" "$launch" "$ips"
    rows+=("{\"arch\": \"$1\", \"batch\": $2, \"launch\": \"$launch\", \"images_per_second\": $ips}")
  done
done
(IFS=,; echo "[${rows[*]}]") > "$OUT/dist_throughput.json"
python3 bench/scaling_model.py "$OUT/xgrad.json" "$OUT/allreduce_np2.json"
