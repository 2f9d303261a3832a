#!/usr/bin/python3
"""Differential testing against PyTorch: random cases per op, run on xgrad (build/tests/xgrad_torch_diff) and on
PyTorch in float64, forward values and every input's gradient compared.

    /usr/bin/python3 scripts/torch_diff.py [--cases 200] [--seed 0] [--threads 1] [--float32] [--ops conv2d,matmul]

Needs Debian's python3-torch (`bash scripts/setup.sh --bench`) and a build (`bash scripts/build.sh`). Each op gets
--cases random cases (about 15% deliberately invalid: then both sides must refuse): shapes, strides, paddings,
dilations, kernels equal to the input, ties, 1x1 maps, batch 1, larger batches that exercise the blocked kernels.
A difference is printed with the case that shows it; the differences xgrad makes on purpose (docs/errors.md,
ops/ops.h) are counted apart, each with its reason. Exit status 1 when any other difference is found.
"""
import argparse
import collections
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
HARNESS = os.path.join(ROOT, "build", "tests", "xgrad_torch_diff")

# Refusals xgrad makes on purpose where PyTorch computes something: (op or "*", text in xgrad's error, reason).
INTENTIONAL = [
    ("elu", "alpha", "elu refuses alpha <= 0 (ops.h)"),
    ("softplus", "beta", "softplus refuses beta <= 0 (ops.h)"),
    ("*", "empty batch", "mean over an empty batch is refused, not NaN (docs/errors.md)"),
    ("*", "expected 4-D", "the 2-D ops take batched [N,C,H,W] input only"),
    ("batch_norm", "more than 1 value per channel", "batch_norm refuses an empty batch in training (ops.h)"),
    ("mse_loss", "differ", "mse_loss refuses different shapes, which PyTorch broadcasts with a warning"),
]


class Gen:
    """Random cases, one generator per op; `invalid` asks for a case both sides should refuse."""

    def __init__(self, seed):
        self.r = random.Random(seed)
        self.np = np.random.default_rng(seed)

    def arr(self, shape, kind="normal", grad=True):
        r, g = self.r, self.np
        a = {"normal": lambda: g.standard_normal(shape) * r.choice([1, 1, 3]),
             "ties": lambda: g.integers(-2, 3, size=shape).astype(np.float64),
             "positive": lambda: g.uniform(0.1, 3, size=shape),
             "relu": lambda: np.maximum(g.standard_normal(shape), 0),
             "big": lambda: g.standard_normal(shape) * r.choice([30, 100, 1000])}[kind]()
        return {"arr": np.asarray(a, dtype=np.float64), "grad": grad}

    def size2(self, lo, hi):
        return self.r.randint(lo, hi) if self.r.random() < 0.5 else [self.r.randint(lo, hi), self.r.randint(lo, hi)]

    def conv2d(self, invalid, pooled=False):
        r = self.r
        big = r.random() < 0.3  # batches of 8+ and output widths 8/24: the blocked and vectorised kernels
        n = r.choice([8, 9, 16, 17]) if big else r.randint(1, 3)
        c, f = r.randint(1, 4), r.randint(1, 6)
        kh, kw = r.randint(1, 5), r.randint(1, 5)
        (sh, sw), (dh, dw) = [r.randint(1, 3), r.randint(1, 3)], [r.randint(1, 2), r.randint(1, 2)]
        ph, pw = r.randint(0, (dh * (kh - 1)) // 2), r.randint(0, (dw * (kw - 1)) // 2)
        # The output size first (at least the pool's window), then the input that gives it, plus a remainder the
        # stride drops.
        pool = r.choice([2, 2, [2, 3], 3, 1])
        oh = r.randint(pair(pool)[0] if pooled else 1, 10)
        ow = r.choice([8, 24]) if big else r.randint(pair(pool)[1] if pooled else 1, 9)
        h = max(1, (oh - 1) * sh + dh * (kh - 1) + 1 - 2 * ph + r.randint(0, sh - 1))
        w = max(1, (ow - 1) * sw + dw * (kw - 1) + 1 - 2 * pw + r.randint(0, sw - 1))
        p = {"stride": [sh, sw], "padding": [ph, pw], "dilation": [dh, dw],
             "fused": r.choice(["none", "none", "relu", "sigmoid", "tanh"])}
        wc = c
        if invalid:
            k = r.randint(0, 3)
            if k == 0:
                p["stride"] = [r.choice([0, -1]), 1]
            elif k == 1:
                p["padding"] = [-1, 0]
            elif k == 2:
                p["dilation"] = [0, 1]
            else:
                wc = c + 1
        x = self.arr((n, c, h, w), r.choice(["normal", "ties"]), r.random() < 0.85)
        bias = self.arr((f,)) if r.random() < 0.6 else None
        case = {"op": "conv2d", "inputs": [x, self.arr((f, wc, kh, kw)), bias], "params": p}
        if pooled:
            case["op"] = "conv2d_max_pool2d"
            p["pool"] = pool
        return case

    def conv_transpose2d(self, invalid):
        r = self.r
        n, c, f, h, w = r.randint(1, 3), r.randint(1, 4), r.randint(1, 4), r.randint(1, 6), r.randint(1, 6)
        st, dl = [r.randint(1, 3), r.randint(1, 3)], [r.randint(1, 2), r.randint(1, 2)]
        out_pad = [r.randint(0, max(st[0], dl[0]) - 1), r.randint(0, max(st[1], dl[1]) - 1)]
        pad = [r.randint(0, 2), r.randint(0, 2)]
        if invalid:
            out_pad = [max(st[0], dl[0]), 0]
        return {"op": "conv_transpose2d",
                "inputs": [self.arr((n, c, h, w), grad=r.random() < 0.85), self.arr((c, f, r.randint(1, 4), r.randint(1, 4))),
                           self.arr((f,)) if r.random() < 0.6 else None],
                "params": {"stride": st, "padding": pad, "output_padding": out_pad, "dilation": dl}}

    def pool(self, op, invalid):
        r = self.r
        n, c = r.randint(1, 9), r.randint(1, 4)
        h, w = r.randint(2, 12), r.choice([8, 24, r.randint(1, 12)])
        k = [r.randint(1, min(4, h)), r.randint(1, min(4, w))]
        stride = None if r.random() < 0.3 else self.size2(1, 3)
        pad = [r.randint(0, k[0] // 2), r.randint(0, k[1] // 2)]
        if invalid:
            pad = [k[0] // 2 + 1, 0]
        kind = {"max_pool2d": r.choice(["ties", "normal"]), "avg_pool2d": "normal"}.get(op, r.choice(["positive", "relu"]))
        p = {"kernel": k, "stride": stride, "padding": pad}
        if op == "avg_pool2d":
            p["count_include_pad"] = r.random() < 0.5
        if op == "lp_pool2d":
            p["p"] = r.choice([1.0, 1.5, 3.0, 4.0, 2.5, 17.0])
        return {"op": op, "inputs": [self.arr((n, c, h, w), kind)], "params": p}

    def adaptive_avg_pool2d(self, invalid):
        r = self.r
        n, c, h, w = r.randint(1, 3), r.randint(1, 3), r.randint(1, 10), r.randint(1, 10)
        out = [0, 2] if invalid else [r.randint(1, h + 3), r.randint(1, w + 3)]
        return {"op": "adaptive_avg_pool2d", "inputs": [self.arr((n, c, h, w))], "params": {"output_size": out}}

    def linear(self, invalid):
        r = self.r
        lead = tuple(r.randint(1, 4) for _ in range(r.randint(0, 2)))
        i, o = r.randint(1, 6), r.randint(1, 5)
        w = (o, i + 1) if invalid else (o, i)
        return {"op": "linear", "inputs": [self.arr(lead + (i,), grad=r.random() < 0.8), self.arr(w),
                                           self.arr((o,)) if r.random() < 0.7 else None]}

    def matmul(self, invalid):
        r = self.r
        m, k, n = r.randint(1, 5), r.randint(1, 5), r.randint(1, 5)
        batch = [r.randint(1, 3) for _ in range(r.randint(0, 2))]
        ba = [d if r.random() < 0.7 else 1 for d in batch]
        bb = [d if r.random() < 0.7 else 1 for d in batch][r.randint(0, len(batch)):]
        a = [k] if r.random() < 0.15 else ba + [m, k]
        b = [k] if r.random() < 0.15 else bb + [k, n]
        if invalid:
            b = b[:-2] + [k + 1, n] if len(b) > 1 else [k + 1]
        return {"op": "matmul", "inputs": [self.arr(tuple(a), grad=r.random() < 0.8), self.arr(tuple(b), grad=r.random() < 0.8)]}

    def bmm(self, invalid):
        r = self.r
        b, m, k, n = r.randint(1, 4), r.randint(1, 5), r.randint(1, 5), r.randint(1, 5)
        return {"op": "bmm", "inputs": [self.arr((b, m, k)), self.arr((b + int(invalid), k, n))]}

    def softmax(self, op, invalid):
        r = self.r
        nd = r.randint(1, 4)
        shape = tuple(r.randint(1, 5) for _ in range(nd))
        dim = r.choice([nd, -nd - 1]) if invalid else r.randint(-nd, nd - 1)
        x = self.arr(shape, r.choice(["normal", "big"]))
        if r.random() < 0.1:
            x["arr"].ravel()[0] = -np.inf
        return {"op": op, "inputs": [x], "params": {"dim": dim}}

    def loss(self, op, invalid):
        r = self.r
        n, c = r.randint(1, 6), r.randint(1, 6)
        labels = [r.randrange(c) for _ in range(n)]
        if invalid:
            labels[0] = c
        return {"op": op, "inputs": [self.arr((n, c), r.choice(["normal", "big"]))],
                "params": {"labels": labels, "reduction": r.choice(["mean", "sum", "none"])}}

    def mse_loss(self, invalid):
        shape = tuple(self.r.randint(1, 4) for _ in range(self.r.randint(1, 3)))
        target = shape + (2,) if invalid else shape
        return {"op": "mse_loss", "inputs": [self.arr(shape), self.arr(target, grad=self.r.random() < 0.5)],
                "params": {"reduction": self.r.choice(["mean", "sum", "none"])}}

    def batch_norm(self, invalid):
        r = self.r
        c, n = r.randint(1, 4), r.randint(2, 4)
        shape = (n, c) + tuple(r.randint(1, 4) for _ in range(r.choice([0, 1, 2])))
        p = {"training": r.random() < 0.6, "momentum": r.choice([0.1, 0.5, 1.0, 0.0]), "eps": r.choice([1e-5, 1e-3, 0.1])}
        if r.random() < 0.7 or not p["training"]:
            p["running_mean"] = {"arr": self.np.standard_normal(c)}
            p["running_var"] = {"arr": self.np.uniform(0.5, 2, c)}
        weight = self.arr((c + int(invalid),)) if r.random() < 0.7 or invalid else None
        return {"op": "batch_norm", "inputs": [self.arr(shape, grad=r.random() < 0.85), weight,
                                               self.arr((c,)) if r.random() < 0.7 else None], "params": p}

    def layer_norm(self, invalid):
        r = self.r
        shape = tuple(r.randint(1, 5) for _ in range(r.randint(1, 4)))
        normalized = list(shape[len(shape) - r.randint(1, len(shape)):])
        if invalid:
            normalized[0] += 1
        affine = r.random() < 0.7 and not invalid
        return {"op": "layer_norm", "inputs": [self.arr(shape, grad=r.random() < 0.85),
                                               self.arr(tuple(normalized)) if affine else None,
                                               self.arr(tuple(normalized)) if affine else None],
                "params": {"normalized_shape": normalized, "eps": r.choice([1e-5, 1e-3, 0.5])}}

    def pointwise(self, op, invalid):
        r = self.r
        x = self.arr(tuple(r.randint(1, 5) for _ in range(r.randint(1, 3))), r.choice(["normal", "big", "normal"]))
        flat = x["arr"].ravel()
        for _ in range(min(flat.size, 3)):  # thresholds, exp overflow, subnormals
            flat[r.randrange(flat.size)] = r.choice([0.0, 20.0, -20.0, 19.999, 20.001, 40.0, 709.0, 710.0, -745.0, 1e-300])
        p = {}
        if op == "gelu":
            p["approximate"] = r.choice(["none", "tanh"])
        if op == "elu":
            p["alpha"] = r.choice([0.0, -1.0]) if invalid else r.choice([1.0, 0.5, 2.0, 1e-3])
        if op == "softplus":
            p["beta"] = r.choice([0.0, -1.0]) if invalid else r.choice([1.0, 0.5, 2.0, 10.0])
            p["threshold"] = r.choice([20.0, 1.0, 5.0, 0.0, 100.0])
        if op == "leaky_relu":
            p["slope"] = r.choice([0.01, 0.2, -0.5, 1.0, 0.0])
        return {"op": op, "inputs": [x], "params": p}

    def make(self, op, invalid):
        if op in ("max_pool2d", "avg_pool2d", "l2_pool2d", "lp_pool2d"):
            return self.pool(op, invalid)
        if op in ("softmax", "log_softmax"):
            return self.softmax(op, invalid)
        if op in ("cross_entropy", "nll_loss"):
            return self.loss(op, invalid)
        if op in POINTWISE:
            return self.pointwise(op, invalid)
        if op == "conv2d_max_pool2d":
            return self.conv2d(invalid, pooled=True)
        return getattr(self, op)(invalid)


POINTWISE = ["gelu", "elu", "softplus", "silu", "leaky_relu", "relu", "sigmoid", "tanh"]
OPS = ["conv2d", "conv2d_max_pool2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "l2_pool2d", "lp_pool2d",
       "adaptive_avg_pool2d", "linear", "matmul", "bmm", "softmax", "log_softmax", "cross_entropy", "nll_loss",
       "mse_loss", "batch_norm", "layer_norm"] + POINTWISE


def pair(v):
    return tuple(v) if isinstance(v, (list, tuple)) else (v, v)


def torch_forward(op, p, t, state):
    """PyTorch's op on tensors `t` (None for an absent input)."""
    x = t[0]
    act = {"none": lambda v: v, "relu": F.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}[p.get("fused", "none")]
    stride = pair(p["stride"]) if p.get("stride") is not None else None
    if op in ("conv2d", "conv2d_max_pool2d"):
        y = act(F.conv2d(x, t[1], t[2], pair(p["stride"]), pair(p["padding"]), pair(p["dilation"])))
        return y if op == "conv2d" else F.max_pool2d(y, pair(p["pool"]), pair(p["pool"]))
    if op == "conv_transpose2d":
        return F.conv_transpose2d(x, t[1], t[2], pair(p["stride"]), pair(p["padding"]), pair(p["output_padding"]), 1,
                                  pair(p["dilation"]))
    if op == "max_pool2d":
        return F.max_pool2d(x, pair(p["kernel"]), stride, pair(p["padding"]))
    if op == "avg_pool2d":
        return F.avg_pool2d(x, pair(p["kernel"]), stride, pair(p["padding"]), False, p["count_include_pad"])
    if op in ("l2_pool2d", "lp_pool2d"):  # PyTorch's lp_pool2d has no padding: pad with zeros (they count as 0)
        (ph, pw), (kh, kw) = pair(p["padding"]), pair(p["kernel"])
        if ph > kh // 2 or pw > kw // 2:
            raise RuntimeError("pad should be at most half of the kernel size")
        return F.lp_pool2d(F.pad(x, (pw, pw, ph, ph)), p.get("p", 2.0), (kh, kw), stride)
    if op == "adaptive_avg_pool2d":
        return F.adaptive_avg_pool2d(x, pair(p["output_size"]))
    if op == "linear":
        return F.linear(x, t[1], t[2])
    if op in ("matmul", "bmm"):
        return getattr(torch, op)(x, t[1])
    if op in ("softmax", "log_softmax"):
        return getattr(F, op)(x, p["dim"])
    if op in ("cross_entropy", "nll_loss"):
        return getattr(F, op)(x, torch.tensor(p["labels"], dtype=torch.int64), reduction=p["reduction"])
    if op == "mse_loss":
        return F.mse_loss(x, t[1], reduction=p["reduction"])
    if op == "batch_norm":
        if "running_mean" in p:
            state["running_mean"] = torch.tensor(p["running_mean"]["arr"])
            state["running_var"] = torch.tensor(p["running_var"]["arr"])
        return F.batch_norm(x, state.get("running_mean"), state.get("running_var"), t[1], t[2], p["training"],
                            p["momentum"], p["eps"])
    if op == "layer_norm":
        return F.layer_norm(x, tuple(p["normalized_shape"]), t[1], t[2], p["eps"])
    if op == "gelu":
        return F.gelu(x, approximate=p["approximate"])
    if op == "elu":
        return F.elu(x, p["alpha"])
    if op == "softplus":
        return F.softplus(x, p["beta"], p["threshold"])
    if op == "leaky_relu":
        return F.leaky_relu(x, p["slope"])
    return {"silu": F.silu, "relu": F.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}[op](x)


def upstream(n):
    return torch.tensor([math.sin(0.37 * i + 1.0) + 0.25 for i in range(n)], dtype=torch.float64)


def torch_run(case, float32):
    t = []
    for a in case["inputs"]:
        if a is None:
            t.append(None)
            continue
        v = torch.tensor(a["arr"])
        if float32:
            v = v.float().double()  # the values xgrad's float32 run starts from
        t.append(v.requires_grad_(a["grad"]))
    state = {}
    try:
        y = torch_forward(case["op"], case.get("params", {}), t, state)
        if any(v is not None and v.requires_grad for v in t):
            y.backward(upstream(y.numel()).reshape(y.shape))
    except Exception as e:  # PyTorch refused the case
        return {"error": str(e).split("\n")[0]}
    out = {"shape": list(y.shape), "output": y.detach().numpy().ravel(),
           "grads": [None if v is None or not v.requires_grad else
                     (v.grad.numpy().ravel() if v.grad is not None else np.zeros(v.numel())) for v in t]}
    for k in ("running_mean", "running_var"):
        if k in state:
            out[k] = state[k].numpy().ravel()
    return out


def encode(a):
    return [("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")) if not math.isfinite(v) else float(v)
            for v in np.asarray(a, dtype=np.float64).ravel()]


def decode(values):
    return np.array([float(v) for v in values], dtype=np.float64)


def to_json(case):
    def tensor(a):
        return {"shape": list(np.shape(a["arr"])), "data": encode(a["arr"]), "grad": a.get("grad", True)}
    params = {k: tensor(v) if isinstance(v, dict) else v for k, v in case.get("params", {}).items()}
    return {"op": case["op"], "params": params, "inputs": [None if a is None else tensor(a) for a in case["inputs"]]}


def close(xg, ref, float32):
    """None when every value agrees (NaN with NaN, inf with the same inf), else a description of the worst one."""
    if xg.shape != ref.shape:
        return f"{xg.size} values against {ref.size}"
    if float32:
        finite = np.isfinite(ref)
        scale = np.abs(ref[finite]).max() if finite.any() else 1.0
        rtol, atol = 2e-5, 2e-5 * (1 + scale)
    else:
        rtol, atol = 1e-9, 1e-10
    with np.errstate(invalid="ignore"):
        ok = (np.isnan(xg) & np.isnan(ref)) | (xg == ref) | (np.isfinite(xg) & np.isfinite(ref) &
                                                            (np.abs(xg - ref) <= atol + rtol * np.abs(ref)))
    if ok.all():
        return None
    i = int(np.argmin(ok))
    return f"at {i}: xgrad {xg[i]!r}, torch {ref[i]!r} ({int((~ok).sum())} of {ok.size} differ)"


def compare(case, xr, tr, float32):
    """(kind, message): kind is None (agree), "intentional" or "difference"."""
    if "error" in xr and "error" in tr:
        return None, ""
    if "error" in xr:
        for op, text, reason in INTENTIONAL:
            if op in ("*", case["op"]) and text in xr["error"]:
                return "intentional", reason
        return "difference", f"xgrad refuses, torch computes: {xr['error']}"
    if "error" in tr:
        return "difference", f"xgrad computes {xr['shape']}, torch refuses: {tr['error']}"
    if list(xr["shape"]) != tr["shape"]:
        return "difference", f"output shape: xgrad {xr['shape']}, torch {tr['shape']}"
    checks = [("output", xr["output"], tr["output"])]
    checks += [(f"gradient of input {k}", gx, gt) for k, (gx, gt) in enumerate(zip(xr["grads"], tr["grads"]))]
    checks += [(k, xr.get(k), tr[k]) for k in ("running_mean", "running_var") if k in tr]
    for what, x, ref in checks:
        if x is None and ref is None:
            continue
        if x is None or ref is None:
            return "difference", f"{what}: present on one side only"
        why = close(decode(x), np.asarray(ref), float32)
        if why:
            return "difference", f"{what} {why}"
    return None, ""


def describe(case):
    shapes = ["-" if a is None else list(np.shape(a["arr"])) for a in case["inputs"]]
    params = {k: (f"[{len(v)} values]" if isinstance(v, list) and len(v) > 8 else v)
              for k, v in case.get("params", {}).items() if not isinstance(v, dict)}
    return f"{case['op']} inputs {shapes} {params}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=200, help="cases per op (default 200)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="xgrad's threads (results must not depend on them)")
    ap.add_argument("--float32", action="store_true", help="run xgrad in float32 against PyTorch float64")
    ap.add_argument("--ops", default=",".join(OPS), help="comma-separated (default: all of " + ", ".join(OPS) + ")")
    args = ap.parse_args()
    ops = args.ops.split(",")
    unknown = [o for o in ops if o not in OPS]
    if unknown:
        sys.exit(f"error: no generator for {', '.join(unknown)} (known: {', '.join(OPS)})")
    if not os.access(HARNESS, os.X_OK):
        sys.exit(f"error: {HARNESS} is missing: build first (bash scripts/build.sh)")
    torch.set_default_dtype(torch.float64)
    warnings.filterwarnings("ignore", category=UserWarning)  # PyTorch's own, e.g. mse_loss's broadcast
    gen = Gen(args.seed)
    found = 0
    with tempfile.TemporaryDirectory(prefix="xgrad_torch_diff_") as tmp:
        for op in ops:
            cases = [gen.make(op, gen.r.random() < 0.15) for _ in range(args.cases)]
            cases_path, results_path = os.path.join(tmp, "cases.json"), os.path.join(tmp, "results.json")
            with open(cases_path, "w") as f:
                json.dump([to_json(c) for c in cases], f)
            run = subprocess.run([HARNESS, cases_path, results_path, str(args.threads), "f32" if args.float32 else "f64"],
                                 capture_output=True, text=True)
            if run.returncode != 0:
                sys.exit(f"error: {HARNESS} failed on {op} (exit {run.returncode}): {run.stderr.strip()[-400:]}")
            with open(results_path) as f:
                results = json.load(f)
            tally = collections.Counter()
            shown = collections.Counter()
            for case, xr in zip(cases, results):
                kind, message = compare(case, xr, torch_run(case, args.float32), args.float32)
                tally[kind or ("both refuse" if "error" in xr else "agree")] += 1
                if kind == "difference" and shown[message[:40]] < 3:
                    shown[message[:40]] += 1
                    print(f"  {op}: {message}\n      {describe(case)}")
                if kind == "intentional":
                    tally["reason: " + message] += 0
            found += tally["difference"]
            reasons = "; ".join(k[8:] for k in tally if k.startswith("reason: "))
            print(f"{op:20s} {len(cases)} cases: {tally['agree']} agree, {tally['both refuse']} refused by both, "
                  f"{tally['intentional']} intentional" + (f" ({reasons})" if reasons else "") +
                  f", {tally['difference']} differ", flush=True)
    print(f"{found} unexplained difference(s)" if found else "no unexplained differences")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
