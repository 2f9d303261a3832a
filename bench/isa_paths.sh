#!/usr/bin/env bash
# xgrad's training and kernel throughput on every kernel path this CPU can execute (XGRAD_ISA=avx512|avx2|baseline),
# and with OpenBLAS forced to its SSE3 "Prescott" core — what OpenBLAS 0.3.21 picks by itself on CPUs missing from its
# model table (current Xeons). One line per path and workload, medians as xgrad_bench measures them.
# Usage: bash bench/isa_paths.sh [xgrad_bench workloads, default: train]
set -euo pipefail
cd "$(dirname "$0")/.."
export OPENBLAS_NUM_THREADS=1
what=("${@:-train}")
run() {
  local label=$1
  shift
  echo "=== $label"
  env "$@" build/bench/xgrad_bench "${what[@]}" --runs 5 | grep -v "^$"
}
run "default (kernels chosen from the CPU's features)"
run "XGRAD_ISA=avx2" XGRAD_ISA=avx2
run "XGRAD_ISA=baseline" XGRAD_ISA=baseline
run "OpenBLAS forced to Prescott (its fallback for CPUs it does not know)" OPENBLAS_CORETYPE=Prescott
