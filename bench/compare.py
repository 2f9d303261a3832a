#!/usr/bin/env python3
"""Joins xgrad_bench and torch_bench JSON files into one table with ratios (xgrad / the faster PyTorch config).

usage: compare.py XGRAD.json TORCH_PLAIN.json [TORCH_TUNED.json] [--json OUT]
Ratios > 1 mean xgrad is faster (throughput ratio for images/s, inverse time ratio for kernels).
"""
import json
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def main(argv):
    out_path = None
    if "--json" in argv:
        i = argv.index("--json")
        out_path = argv[i + 1]
        argv = argv[:i] + argv[i + 2:]
    xg = load(argv[0])
    torches = [load(p) for p in argv[1:]]
    names = ["plain", "tuned"][:len(torches)]
    rows = []
    # What ran on each side, so the table is never read without it.
    print(f"CPU: {xg.get('cpu', 'unknown')}")
    print(f"xgrad kernels: {xg.get('kernels', 'unknown')}")
    for n, tb in zip(names, torches):
        print(f"PyTorch {tb.get('torch', '?')} ({n}) kernels: {tb.get('kernels', 'unknown')}")
    peak = xg.get("peak", {})
    if peak:
        print(f"FMA peak: {peak.get('gflops_1_thread', 0):.1f} GFLOP/s on 1 core, {peak.get('gflops_2_threads', 0):.1f} on 2")
    print()
    print(f"{'kernel (ms, lower is better)':44s} {'thr':>3s} {'xgrad':>9s} " + " ".join(f"{'torch ' + n:>12s}" for n in names) + f" {'ratio':>7s}")
    for r in xg.get("ops", []):
        for phase in ("forward_ms", "forward_backward_ms"):
            t = [next((o[phase] for o in tb["ops"] if o["name"] == r["name"] and o["threads"] == r["threads"]), None) for tb in torches]
            best = min(v for v in t if v is not None) if any(v is not None for v in t) else None
            ratio = best / r[phase] if best else None
            label = r["name"] + (" fwd" if phase == "forward_ms" else " fwd+bwd")
            print(f"{label:44s} {r['threads']:>3d} {r[phase]:9.3f} " + " ".join(f"{v:12.3f}" if v else f"{'-':>12s}" for v in t) + (f" {ratio:7.2f}" if ratio else ""))
            rows.append({"name": label, "threads": r["threads"], "xgrad_ms": r[phase], "torch_ms": dict(zip(names, t)), "ratio": ratio})
    print()
    print(f"{'workload (images/s, higher is better)':44s} {'thr':>3s} {'xgrad':>9s} " + " ".join(f"{'torch ' + n:>12s}" for n in names) + f" {'ratio':>7s}")
    for r in xg.get("train", []):
        t = [next((o["images_per_second"] for o in tb["train"] if o["workload"] == r["workload"] and o["arch"] == r["arch"]
                   and o["batch"] == r["batch"] and o["threads"] == r["threads"]), None) for tb in torches]
        best = max(v for v in t if v is not None) if any(v is not None for v in t) else None
        ratio = r["images_per_second"] / best if best else None
        label = f"{r['workload']} {r['arch']} batch {r['batch']}"
        pk = peak.get("gflops_1_thread" if r["threads"] == 1 else "gflops_2_threads")
        of_peak = f" {100 * r['gflops'] / pk:5.1f}% of peak" if pk and "gflops" in r else ""
        print(f"{label:44s} {r['threads']:>3d} {r['images_per_second']:9.0f} " + " ".join(f"{v:12.0f}" if v else f"{'-':>12s}" for v in t) + (f" {ratio:7.2f}" if ratio else "") + of_peak)
        rows.append({"name": label, "threads": r["threads"], "xgrad_images_per_second": r["images_per_second"],
                     "torch_images_per_second": dict(zip(names, t)), "ratio": ratio,
                     "gflops": r.get("gflops"), "percent_of_peak": 100 * r["gflops"] / pk if pk and "gflops" in r else None})
    if "engine" in xg:
        print(f"\nengine: {xg['engine']['us_per_op']:.3f} us per recorded op (forward + backward, {xg['engine']['ops']}-op chain)")
    if out_path:
        with open(out_path, "w") as f:
            json.dump({"cpu": xg.get("cpu"), "xgrad_kernels": xg.get("kernels"), "peak": peak,
                       "torch_kernels": {n: tb.get("kernels") for n, tb in zip(names, torches)},
                       "rows": rows, "engine": xg.get("engine")}, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
