#!/usr/bin/python3
"""LeNet-5 in PyTorch on the same data, split and hyper-parameters as `mnist --arch lenet5` (bench/lenet5_accuracy.sh).

Usage: lenet5_torch.py DATA_DIR SEED EPOCHS BATCH LR MOMENTUM
Prints one JSON line: the seed, the final and best held-out accuracy. Needs Debian's python3-torch (/usr/bin/python3).
The network: conv 6@5x5 pad 2 -> tanh -> avg-pool 2 -> conv 16@5x5 -> tanh -> avg-pool 2 -> 400 -> 120 -> 84 -> 10
(tanh), PyTorch's default initialisation; SGD with momentum, mean cross-entropy, a fresh shuffle every epoch, the last
batch smaller; pixels / 255, no normalisation or augmentation — exactly what xgrad's run does.
"""
import gzip
import json
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx(path):
    if not os.path.exists(path):
        path += ".gz"
    raw = open(path, "rb").read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return torch.frombuffer(bytearray(raw[4 + 4 * ndim:]), dtype=torch.uint8).reshape(dims)


class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(400, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.avg_pool2d(torch.tanh(self.conv1(x)), 2)
        x = F.avg_pool2d(torch.tanh(self.conv2(x)), 2).flatten(1)
        return self.fc3(torch.tanh(self.fc2(torch.tanh(self.fc1(x)))))


def main():
    data, seed, epochs, batch, lr, momentum = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(
        sys.argv[5]), float(sys.argv[6])
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    xtr = read_idx(f"{data}/train-images-idx3-ubyte").float().div(255).unsqueeze(1)
    ytr = read_idx(f"{data}/train-labels-idx1-ubyte").long()
    xte = read_idx(f"{data}/t10k-images-idx3-ubyte").float().div(255).unsqueeze(1)
    yte = read_idx(f"{data}/t10k-labels-idx1-ubyte").long()
    model = LeNet5()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    best, final = 0.0, 0.0
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(ytr))
        for i in range(0, len(ytr), batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            F.cross_entropy(model(xtr[idx]), ytr[idx]).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            final = (model(xte).argmax(1) == yte).float().mean().item()
        best = max(best, final)
    print(json.dumps({"seed": seed, "final": final, "best": best}))


if __name__ == "__main__":
    main()
