#!/usr/bin/python3
"""Generates tests/fixtures/golden.json: forward values and gradients from PyTorch for a handful of fixed small cases.

Each case names its op and parameters as tests/op_specs.h calls them (the same keys as scripts/torch_diff.py).

Run once with Debian's python3-torch (`/usr/bin/python3 scripts/gen_golden.py`); the tests read the JSON and need no
PyTorch. Inputs and the upstream gradient are float32 values drawn from a fixed seed.
"""
import json
import os
import sys

import torch
import torch.nn.functional as F

torch.manual_seed(20261126)


def t(shape):
    return torch.randn(*shape, dtype=torch.float32)


def enc(x):
    return {"shape": list(x.shape), "data": [float(v) for v in x.detach().reshape(-1).tolist()]}


def case(name, op, params, inputs, fn):
    leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
    y = fn(**leaves)
    g = torch.randn(y.shape, dtype=torch.float32) if y.dim() > 0 else torch.tensor(1.0)
    y.backward(g)
    out = {"name": name, "op": op, "params": params, "inputs": {k: enc(v) for k, v in inputs.items()},
           "grad_output": enc(g), "output": enc(y), "grads": {k: enc(v.grad) for k, v in leaves.items()}}
    return out


cases = [
    case("conv2d stride (2,1) padding (1,0) dilation (1,2) with bias", "conv2d",
         {"stride": [2, 1], "padding": [1, 0], "dilation": [1, 2]},
         {"x": t([2, 3, 7, 6]), "w": t([4, 3, 3, 2]), "b": t([4])},
         lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=(1, 0), dilation=(1, 2))),
    case("conv2d seed layer 1->3 maps 5x5", "conv2d", {"stride": [1, 1], "padding": [0, 0], "dilation": [1, 1]},
         {"x": t([2, 1, 12, 12]), "w": t([3, 1, 5, 5]), "b": t([3])},
         lambda x, w, b: F.conv2d(x, w, b)),
    case("max_pool2d 2x2", "max_pool2d", {"kernel": [2, 2], "stride": [2, 2], "padding": [0, 0]},
         {"x": t([2, 3, 6, 5])}, lambda x: F.max_pool2d(x, 2)),
    case("max_pool2d 3x3 stride 2 padding 1", "max_pool2d", {"kernel": [3, 3], "stride": [2, 2], "padding": [1, 1]},
         {"x": t([1, 2, 7, 7])}, lambda x: F.max_pool2d(x, 3, 2, 1)),
    case("lp_pool2d p=2 2x2", "l2_pool2d", {"kernel": [2, 2], "stride": [2, 2], "padding": [0, 0]},
         {"x": t([2, 2, 6, 6])}, lambda x: F.lp_pool2d(x, 2, 2)),
    case("lp_pool2d p=2 3x2 stride (2,1)", "l2_pool2d", {"kernel": [3, 2], "stride": [2, 1], "padding": [0, 0]},
         {"x": t([1, 3, 7, 5])}, lambda x: F.lp_pool2d(x, 2, (3, 2), (2, 1))),
    case("avg_pool2d 3x3 stride 2 padding 1", "avg_pool2d", {"kernel": [3, 3], "stride": [2, 2], "padding": [1, 1]},
         {"x": t([2, 2, 6, 7])}, lambda x: F.avg_pool2d(x, 3, 2, 1)),
    case("mm 3x4 by 4x5", "matmul", {}, {"a": t([3, 4]), "b": t([4, 5])}, lambda a, b: torch.mm(a, b)),
    case("cross_entropy 4x10 mean", "cross_entropy", {"labels": [3, 0, 9, 3]}, {"x": t([4, 10]) * 3},
         lambda x: F.cross_entropy(x, torch.tensor([3, 0, 9, 3]))),
]


def nonnegative_with_zero_windows(shape):
    """|randn| with the top-left 2x2 window of every plane zeroed: lp_pool2d's all-zero-window case (PyTorch: 0, grad 0)."""
    x = t(shape).abs()
    x[:, :, 0:2, 0:2] = 0
    return x


# Appended after the cases above so that their random draws stay the same. lp_pool2d on non-negative inputs (where
# PyTorch's x^p equals xgrad's |x|^p; docs/adding-an-op.md and ops/lp_pool2d.cpp say why they differ otherwise).
cases += [
    case("lp_pool2d p=3 2x2 with all-zero windows", "lp_pool2d", {"p": 3.0, "kernel": [2, 2], "stride": [2, 2], "padding": [0, 0]},
         {"x": nonnegative_with_zero_windows([2, 2, 6, 6])}, lambda x: F.lp_pool2d(x, 3.0, 2)),
    case("lp_pool2d p=1.5 3x2 stride (2,1)", "lp_pool2d", {"p": 1.5, "kernel": [3, 2], "stride": [2, 1], "padding": [0, 0]},
         {"x": t([1, 3, 7, 5]).abs()}, lambda x: F.lp_pool2d(x, 1.5, (3, 2), (2, 1))),
]

# Elementwise ops of issue 15, appended so that the cases above keep their random draws.
cases += [
    case("sqrt", "sqrt", {}, {"x": t([3, 4]).abs() + 0.1}, lambda x: torch.sqrt(x)),
    case("pow 3", "pow", {"p": 3.0}, {"x": t([3, 4])}, lambda x: torch.pow(x, 3.0)),
    case("pow -1.5", "pow", {"p": -1.5}, {"x": t([3, 4]).abs() + 0.5}, lambda x: torch.pow(x, -1.5)),
    case("abs", "abs", {}, {"x": t([3, 4])}, lambda x: torch.abs(x)),
    case("clamp -0.5 0.5", "clamp", {"lo": -0.5, "hi": 0.5}, {"x": t([3, 4])}, lambda x: torch.clamp(x, -0.5, 0.5)),
    case("maximum broadcast [2,3] [3]", "maximum", {}, {"a": t([2, 3]), "b": t([3])}, lambda a, b: torch.maximum(a, b)),
    case("minimum broadcast [2,1] [2,3]", "minimum", {}, {"a": t([2, 1]), "b": t([2, 3])}, lambda a, b: torch.minimum(a, b)),
    case("rsub 1 - x, rdiv 2 / x", "rsub_rdiv", {}, {"x": t([3, 4]).abs() + 0.5}, lambda x: (1.0 - x) * (2.0 / x)),
]

# Activations, tensor ops and normalisation of issue 15 (appended: the cases above keep their draws).
cases += [
    case("leaky_relu 0.1", "leaky_relu", {"slope": 0.1}, {"x": t([3, 4])}, lambda x: F.leaky_relu(x, 0.1)),
    case("elu 1.5", "elu", {"alpha": 1.5}, {"x": t([3, 4])}, lambda x: F.elu(x, 1.5)),
    case("gelu exact", "gelu", {"approximate": "none"}, {"x": t([3, 4])}, lambda x: F.gelu(x)),
    case("gelu tanh", "gelu", {"approximate": "tanh"}, {"x": t([3, 4])}, lambda x: F.gelu(x, approximate="tanh")),
    case("softplus beta 2", "softplus", {"beta": 2.0, "threshold": 20.0}, {"x": t([3, 4]) * 3}, lambda x: F.softplus(x, 2.0, 20.0)),
    case("silu", "silu", {}, {"x": t([3, 4])}, lambda x: F.silu(x)),
    case("permute (2,0,1)", "permute", {"dims": [2, 0, 1]}, {"x": t([2, 3, 4])}, lambda x: x.permute(2, 0, 1)),
    case("cat dim 1", "cat", {"dim": 1}, {"a": t([2, 3]), "b": t([2, 2])}, lambda a, b: torch.cat([a, b], 1)),
    case("bmm [2,3,4] [2,4,5]", "bmm", {}, {"a": t([2, 3, 4]), "b": t([2, 4, 5])}, lambda a, b: torch.bmm(a, b)),
    case("batch_norm training [4,3,2,2] affine", "batch_norm", {"training": True},
         {"x": t([4, 3, 2, 2]), "w": t([3]), "b": t([3])},
         lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True)),
    case("layer_norm over [4]", "layer_norm", {"normalized_shape": [4]}, {"x": t([2, 3, 4]), "w": t([4]), "b": t([4])},
         lambda x, w, b: F.layer_norm(x, [4], w, b)),
    case("adaptive_avg_pool2d 5x7 -> 3x4", "adaptive_avg_pool2d", {"output_size": [3, 4]}, {"x": t([1, 2, 5, 7])},
         lambda x: F.adaptive_avg_pool2d(x, (3, 4))),
]

cases += [
    case("conv_transpose2d stride 2 padding 1 output_padding 1 dilation (1,2) with bias", "conv_transpose2d",
         {"stride": [2, 2], "padding": [1, 1], "output_padding": [1, 1], "dilation": [1, 2]},
         {"x": t([2, 3, 4, 3]), "w": t([3, 2, 3, 2]), "b": t([2])},
         lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1, dilation=(1, 2))),
]

# Shape and selection ops (appended last: the cases above keep their draws).
WHERE_COND = [i % 3 == 0 for i in range(12)]
cases += [
    case("stack dim 1", "stack", {"dim": 1}, {"a": t([2, 3]), "b": t([2, 3])}, lambda a, b: torch.stack([a, b], 1)),
    case("narrow dim 1 start 1 length 2", "narrow", {"dim": 1, "start": 1, "length": 2}, {"x": t([2, 4, 3])},
         lambda x: x.narrow(1, 1, 2)),
    case("index_select dim 0 [2, 0, 2]", "index_select", {"dim": 0, "index": [2, 0, 2]}, {"x": t([3, 4])},
         lambda x: torch.index_select(x, 0, torch.tensor([2, 0, 2]))),
    case("chunk 3 along dim 1, pieces reordered", "chunk", {"chunks": 3, "dim": 1}, {"x": t([2, 7])},
         lambda x: (lambda c: torch.cat([c[2], c[0], c[1] * 2], 1))(torch.chunk(x, 3, 1))),
    case("max along dim 1 keepdim", "max_dim", {"dim": 1, "keepdim": True}, {"x": t([3, 5])},
         lambda x: torch.max(x, 1, keepdim=True).values),
    case("min along dim 0", "min_dim", {"dim": 0, "keepdim": False}, {"x": t([4, 3])}, lambda x: torch.min(x, 0).values),
    case("where", "where", {"cond": WHERE_COND}, {"a": t([3, 4]), "b": t([3, 4])},
         lambda a, b: torch.where(torch.tensor(WHERE_COND).reshape(3, 4), a, b)),
]

# torch.matmul's other ranks and F.linear on [*,in] (appended last: the cases above keep their draws).
cases += [
    case("matmul vector by vector (dot)", "matmul", {}, {"a": t([4]), "b": t([4])}, lambda a, b: torch.matmul(a, b)),
    case("matmul matrix by vector", "matmul", {}, {"a": t([3, 4]), "b": t([4])}, lambda a, b: torch.matmul(a, b)),
    case("matmul vector by batched", "matmul", {}, {"a": t([4]), "b": t([2, 4, 3])}, lambda a, b: torch.matmul(a, b)),
    case("matmul batched by matrix", "matmul", {}, {"a": t([2, 3, 4]), "b": t([4, 5])}, lambda a, b: torch.matmul(a, b)),
    case("matmul broadcast batches [2,1,3,4] [3,4,2]", "matmul", {}, {"a": t([2, 1, 3, 4]), "b": t([3, 4, 2])},
         lambda a, b: torch.matmul(a, b)),
    case("linear [2,3,5] by [4,5] with bias", "linear", {}, {"x": t([2, 3, 5]), "w": t([4, 5]), "b": t([4])},
         lambda x, w, b: F.linear(x, w, b)),
]

# GroupNorm's op (appended last: the cases above keep their draws).
cases += [
    case("group_norm 3 groups of [2,6,3,2] affine", "group_norm", {"groups": 3, "eps": 1e-5},
         {"x": t([2, 6, 3, 2]), "w": t([6]), "b": t([6])}, lambda x, w, b: F.group_norm(x, 3, w, b, 1e-5)),
]

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "golden.json")
with open(path, "w") as f:
    json.dump({"generator": "scripts/gen_golden.py", "torch": torch.__version__, "cases": cases}, f)
    f.write("\n")
print(f"wrote {len(cases)} cases to {os.path.normpath(path)}", file=sys.stderr)
