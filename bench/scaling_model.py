#!/usr/bin/env python3
"""Projected data-parallel efficiency of the MNIST networks (docs/distributed.md).

    python3 bench/scaling_model.py bench/results/xgrad.json bench/results/allreduce_np2.json

Inputs, measured on this machine: one node's compute time per training step at batch 10 and 64 (xgrad_bench train,
2 threads), fitted as c(b) = t0 + b t_img (t0: the per-step cost that does not shrink with the batch), and the gradient
sizes and loopback MPI_Allreduce times (xgrad_dist_bench on 2 ranks). Model, for K nodes, n gradient bytes, latency a
and bandwidth w of the network:
    allreduce  T(K) = min(ring: 2(K-1)a + 2(K-1)/K n/w,  recursive doubling: log2(K) (a + n/w))
    one step   s(K) = c(B/K) + T(K)       (xgrad reduces after backward: no overlap)
The per-node batch at which communication costs as much as compute is b* = (T(K) - t0) / t_img (50% efficiency);
below the global batch B_min = T(K) / (t_img (1 - 1/K)) K nodes are slower than one: communication stops paying.
"""
import json
import math
import sys

NETWORKS = {  # name: (latency s, bandwidth bytes/s)
    "10 GbE (TCP)": (25e-6, 1.1e9),
    "100 Gb/s InfiniBand": (2e-6, 11e9),
}


def allreduce_seconds(nbytes, k, latency, bandwidth):
    if k == 1:
        return 0.0
    ring = 2 * (k - 1) * latency + 2 * (k - 1) / k * nbytes / bandwidth
    doubling = math.log2(k) * (latency + nbytes / bandwidth)
    return min(ring, doubling)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    train = json.load(open(sys.argv[1]))["train"]
    allreduce = json.load(open(sys.argv[2]))
    step = {(r["arch"], r["batch"]): r["batch"] / r["images_per_second"] for r in train
            if r["workload"] == "train" and r["threads"] == 2}
    t_img = {a: (step[(a, 64)] - step[(a, 10)]) / 54 for a in ("seed", "deep")}
    t0 = {a: max(0.0, step[(a, 10)] - 10 * t_img[a]) for a in ("seed", "deep")}

    def compute(arch, b):
        return t0[arch] + b * t_img[arch]

    grads = {r["name"].split()[0]: r for r in allreduce["allreduce"] if r["name"]}
    print("measured on this machine: compute per step (batch 10 and 64, 2 threads), loopback MPI_Allreduce on 2 ranks")
    for arch in ("seed", "deep"):
        g = grads[arch]
        c64 = compute(arch, 64)
        print(f"  {arch}: {g['floats']} gradient floats ({g['bytes'] / 1024:.0f} KiB); compute {t0[arch] * 1e6:.0f} us per step "
              f"+ {t_img[arch] * 1e6:.1f} us per image = {c64 * 1e3:.2f} ms per batch of 64; allreduce {g['seconds'] * 1e6:.1f} us "
              f"({100 * g['seconds'] / (c64 + g['seconds']):.1f}% of a 64-image step)")
    print()
    print("projected, K nodes like this one:")
    print(f"{'arch':5} {'network':20} {'K':>3} {'allreduce us':>13} {'eff. @64/node':>14} {'speedup @B=64':>14} "
          f"{'speedup @B=1024':>16} {'b* (50%)':>9} {'B_min':>6}")
    for arch in ("seed", "deep"):
        nbytes = grads[arch]["bytes"]
        for net, (lat, bw) in NETWORKS.items():
            for k in (2, 8, 64):
                t = allreduce_seconds(nbytes, k, lat, bw)
                eff = compute(arch, 64) / (compute(arch, 64) + t)

                def speedup(batch):
                    return compute(arch, batch) / (compute(arch, batch / k) + t)

                bstar = max(0.0, (t - t0[arch]) / t_img[arch])
                bmin = t / (t_img[arch] * (1 - 1 / k))
                print(f"{arch:5} {net:20} {k:3d} {t * 1e6:13.1f} {100 * eff:13.1f}% {speedup(64):14.2f} "
                      f"{speedup(1024):16.2f} {bstar:9.0f} {bmin:6.0f}")
    print("\neff. @64/node: weak scaling, 64 images per node per step. speedup @B: strong scaling at global batch B "
          "(B/K per node) against one node.\nb*: images per node per step at which the allreduce takes as long as the "
          "compute; below it communication dominates (0: never, the per-step cost t0 alone exceeds it).\n"
          "B_min: the global batch below which K nodes train slower than one node (communication stops paying).")


if __name__ == "__main__":
    main()
