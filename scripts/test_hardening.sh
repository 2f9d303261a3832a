#!/usr/bin/env bash
# The hardening suites (run by CI after scripts/test.sh): the whole test suite under ASan+UBSan — with MPI, so the
# distributed suite on 2 ranks and the mpirun CLI tests run sanitized too (OpenMPI's own allocations are suppressed by
# tests/lsan-openmpi.supp) — the whole suite under ThreadSanitizer with the std::thread backend (Debian's TBB is not
# instrumented), and the fuzz corpora replayed through the libFuzzer targets built with clang. The TSan and fuzz
# builds are without MPI (-DXGRAD_MPI=OFF), which also shows that xgrad builds and passes everything without it.
# Each prints ctest's summary; any failure fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --fuzz
export OPENBLAS_NUM_THREADS=1
JOBS=$(nproc)
# Runs ctest in build dir $1 (extra arguments go to ctest): the summary on success, everything on failure.
run_ctest() {
  local dir=$1
  shift
  if (cd "$dir" && ctest --output-on-failure -j"$JOBS" "$@" >ctest.log 2>&1); then
    tail -n 3 "$dir/ctest.log"
    # A test that failed and then passed on its retry (--repeat until-pass) is shown with its first attempt's output.
    if grep -q '\*\*\*Failed' "$dir/ctest.log"; then
      echo "failed once, passed on the retry (first attempt below):"
      grep -A 25 '\*\*\*Failed' "$dir/ctest.log"
    fi
  else
    cat "$dir/ctest.log"
    return 1
  fi
}

echo "=== ASan + UBSan (with MPI: the distributed tests too)"
# OpenMPI unloads its plugins at MPI_Finalize, leaving leak stacks in "<unknown module>": keep them loaded, and unwind
# slowly (OpenMPI has no frame pointers), so the suppressions can match.
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan-openmpi.supp:print_suppressions=0"
export ASAN_OPTIONS=fast_unwind_on_malloc=0 OMPI_MCA_mca_base_component_disable_dlclose=1
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DXGRAD_BUILD_BENCH=OFF \
  "-DCMAKE_CXX_FLAGS=-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" >/dev/null
cmake --build build-asan -j"$JOBS" >/dev/null
# Each test once under the sanitizers: the "… on the avx2/baseline kernel path" and "… with OPENBLAS_CORETYPE …"
# repeats rerun whole suites (a minute each in a Debug ASan build) for kernel bodies and BLAS cores the plain run
# already checks. A failing test is run a
# second time: twice in CI, a child `mnist` of `mnist compare` exited 1 under ASan+UBSan at a loaded moment without
# ever failing here in hundreds of runs (docs/testing.md); a real failure fails both attempts, and a passed retry is
# printed with its first attempt's output, which now names the failing child and the line of its log that says why.
run_ctest build-asan -E "kernel path|OPENBLAS_CORETYPE" --repeat until-pass:2

unset LSAN_OPTIONS ASAN_OPTIONS OMPI_MCA_mca_base_component_disable_dlclose

echo "=== ThreadSanitizer (std::thread backend)"
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DXGRAD_BUILD_BENCH=OFF -DXGRAD_MPI=OFF -DXGRAD_PARALLEL_BACKEND=std_thread \
  "-DCMAKE_CXX_FLAGS=-fsanitize=thread" >/dev/null
cmake --build build-tsan -j"$JOBS" >/dev/null
TSAN_OPTIONS=halt_on_error=1 run_ctest build-tsan -E "kernel path|OPENBLAS_CORETYPE"

echo "=== fuzz corpus replay (libFuzzer, clang)"
CXX=clang++-14 cmake -S . -B build-fuzz -DXGRAD_FUZZ=ON -DXGRAD_BUILD_BENCH=OFF -DXGRAD_MPI=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j"$JOBS" --target fuzz_idx fuzz_npm fuzz_checkpoint fuzz_checkpoint_header >/dev/null
run_ctest build-fuzz -R '^fuzz_'
