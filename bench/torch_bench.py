#!/usr/bin/python3
"""The PyTorch side of the benchmarks: the same shapes, networks, initialisation scale and SGD as xgrad_bench.

Run by bench/compare.sh under two configurations ("plain" and "tuned", set through the environment before start).
Writes JSON to the path given as the first argument. Needs Debian's python3-torch (/usr/bin/python3).
"""
import json
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

RUNS = 7


def median_seconds(fn):
    fn()
    t0 = time.perf_counter()
    fn()
    one = time.perf_counter() - t0
    reps = max(1, int(0.03 / max(one, 1e-9)))
    times = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        times.append((time.perf_counter() - t0) / reps)
    return statistics.median(times)


def bench_ops():
    rows = []

    def row(name, f_fwd, f_fb, fwd, params):
        for threads in (1, 2):
            torch.set_num_threads(threads)
            with torch.no_grad():
                tf = median_seconds(fwd)

            with torch.no_grad():
                seed = torch.ones_like(fwd())  # the upstream gradient, made once (it is not part of the op)

            def fb():
                for p in params:
                    p.grad = None
                y = fwd()
                y.backward(seed)
            tfb = median_seconds(fb)
            print(f"{name:34s} {threads} thr  fwd {tf*1e3:9.3f} ms   fwd+bwd {tfb*1e3:9.3f} ms", flush=True)
            rows.append({"name": name, "threads": threads, "forward_ms": tf * 1e3, "forward_backward_ms": tfb * 1e3,
                         "forward_gflops": f_fwd / tf * 1e-9, "forward_backward_gflops": f_fb / tfb * 1e-9})

    a = torch.randn(1024, 1024, requires_grad=True)
    b = torch.randn(1024, 1024, requires_grad=True)
    f = 2.0 * 1024 ** 3
    row("matmul 1024x1024x1024", f, 3 * f, lambda: a @ b, [a, b])
    for name, n, c, hw, fo, k in (("conv2d N=64 1->20 28x28 k5", 64, 1, 28, 20, 5),
                                  ("conv2d N=64 20->40 12x12 k5", 64, 20, 12, 40, 5),
                                  ("conv2d N=10 1->3 28x28 k5", 10, 1, 28, 3, 5)):
        x = torch.randn(n, c, hw, hw, requires_grad=c > 1)
        w = torch.randn(fo, c, k, k, requires_grad=True)
        bb = torch.randn(fo, requires_grad=True)
        o = hw - k + 1
        fl = 2.0 * n * fo * o * o * c * k * k
        row(name, fl, (3 if c > 1 else 2) * fl, lambda x=x, w=w, bb=bb: F.conv2d(x, w, bb), [x, w, bb])
    px = torch.randn(64, 20, 24, 24, requires_grad=True)
    e = 64.0 * 20 * 24 * 24
    row("max_pool2d 2x2 N=64 C=20 24x24", e, 2 * e, lambda: F.max_pool2d(px, 2), [px])
    row("l2_pool2d 2x2 N=64 C=20 24x24", 2 * e, 5 * e, lambda: F.lp_pool2d(px, 2, 2), [px])
    return rows


class Net(nn.Module):
    """The seed / seed-l2 / deep networks of models/mnist_cnn.h (PyTorch default init, as xgrad_bench uses)."""

    def __init__(self, arch):
        super().__init__()
        self.arch = arch
        if arch == "deep":
            self.convs = nn.ModuleList([nn.Conv2d(1, 20, 5), nn.Conv2d(20, 40, 5)])
            self.fcs = nn.ModuleList([nn.Linear(640, 100), nn.Linear(100, 10)])
        else:
            self.convs = nn.ModuleList([nn.Conv2d(1, 3, 5)])
            self.fcs = nn.ModuleList([nn.Linear(432, 10)])

    def forward(self, x):
        act = torch.relu if self.arch == "deep" else torch.sigmoid
        for conv in self.convs:
            h = act(conv(x))
            x = F.lp_pool2d(h, 2, 2) if self.arch == "seed-l2" else F.max_pool2d(h, 2)
        x = x.flatten(1)
        for i, fc in enumerate(self.fcs):
            x = fc(x)
            if i + 1 < len(self.fcs):
                x = act(x)
        return x


def bench_train():
    rows = []
    for arch in ("seed", "seed-l2", "deep"):
        for batch in (10, 64):
            for threads in (1, 2):
                torch.set_num_threads(threads)
                torch.manual_seed(0)
                model = Net(arch)
                opt = torch.optim.SGD(model.parameters(), lr=0.01)
                x = torch.randn(batch, 1, 28, 28)
                y = torch.arange(batch) % 10

                def step():
                    opt.zero_grad()
                    F.cross_entropy(model(x), y).backward()
                    opt.step()
                t = median_seconds(step)
                print(f"train {arch:8s} batch {batch:<3d} {threads} thr  {batch / t:9.1f} images/s", flush=True)
                rows.append({"workload": "train", "arch": arch, "batch": batch, "threads": threads,
                             "images_per_second": batch / t})
    for threads in (1, 2):
        torch.set_num_threads(threads)
        model = Net("seed").eval()
        x = torch.randn(1000, 1, 28, 28)

        def infer():
            with torch.no_grad():
                model(x)
        t = median_seconds(infer)
        print(f"infer seed     batch 1000 {threads} thr  {1000 / t:9.1f} images/s", flush=True)
        rows.append({"workload": "infer", "arch": "seed", "batch": 1000, "threads": threads,
                     "images_per_second": 1000 / t})
    return rows


def kernels():
    """What PyTorch runs: its CPU capability (oneDNN/ATen dispatch) and the core of the OpenBLAS it loaded."""
    import ctypes
    import re
    cap = re.search(r"CPU capability usage: (\S+)", torch.__config__.show())
    core = None
    for lib in ("libopenblas.so.0", "libblas.so.3"):
        try:
            h = ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL | 4)  # RTLD_NOLOAD: only if torch already loaded it
        except OSError:
            continue
        h.openblas_get_corename.restype = ctypes.c_char_p
        core = h.openblas_get_corename().decode()
        break
    return f"ATen {cap.group(1) if cap else 'unknown'}, oneDNN convolutions, OpenBLAS {core or 'not loaded'}"


if __name__ == "__main__":
    torch.zeros(4, 4) @ torch.zeros(4, 4)  # load the BLAS before asking which core it runs
    out = {"torch": torch.__version__, "kernels": kernels(), "ops": bench_ops(), "train": bench_train()}
    print(f"PyTorch {torch.__version__}; kernels: {out['kernels']}", flush=True)
    with open(sys.argv[1], "w") as f:
        json.dump(out, f, indent=1)
