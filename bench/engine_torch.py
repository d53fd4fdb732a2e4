#!/usr/bin/python3
"""engine_torch.py: PyTorch-CPU figures for bench/engine_bench's U-Nets.

The same network as engine/unet.c (see tests/unit/engine_torch.py for the
layer-for-layer twin that checks the loss curves): depth D, base B, 7 -> 3
channels, GroupNorm(8), ReLU, nearest upsampling, L1 loss, Adam; batch 4.
Prints training steps/s and inference megapixels/s with 2 threads.
Usage: engine_torch.py [--size 128] [--depth 4] [--base 32] [--steps 3]
"""
import argparse
import math
import time

import torch
import torch.nn.functional as F


def make(depth, base, cin, cout, groups):
    P = {}

    def conv(name, ci, co, k):
        bound = 1.0 / math.sqrt(ci * k * k)
        P[name + ".conv.w"] = torch.empty(co, ci, k, k).uniform_(-bound, bound).requires_grad_()
        P[name + ".conv.b"] = torch.empty(co).uniform_(-bound, bound).requires_grad_()
        if k == 3:
            P[name + ".norm.gamma"] = torch.ones(co, requires_grad=True)
            P[name + ".norm.beta"] = torch.zeros(co, requires_grad=True)

    c = cin
    for l in range(depth):
        conv("enc%d.0" % l, c, base << l, 3)
        conv("enc%d.1" % l, base << l, base << l, 3)
        c = base << l
    for l in range(depth - 2, -1, -1):
        conv("dec%d.0" % l, c + (base << l), base << l, 3)
        conv("dec%d.1" % l, base << l, base << l, 3)
        c = base << l
    conv("head", c, cout, 1)

    def block(name, v, k=3):
        v = F.conv2d(v, P[name + ".conv.w"], P[name + ".conv.b"], padding=k // 2)
        if k == 1:
            return v
        v = F.group_norm(v, math.gcd(v.shape[1], groups), P[name + ".norm.gamma"], P[name + ".norm.beta"])
        return F.relu(v)

    def net(v):
        skips = []
        for l in range(depth):
            if l > 0:
                v = F.avg_pool2d(skips[-1], 2)
            v = block("enc%d.1" % l, block("enc%d.0" % l, v))
            skips.append(v)
        for l in range(depth - 2, -1, -1):
            v = torch.cat([F.interpolate(v, scale_factor=2, mode="nearest"), skips[l]], 1)
            v = block("dec%d.1" % l, block("dec%d.0" % l, v))
        return block("head", v, k=1)

    return P, net


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--base", type=int, default=32)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(1)
    P, net = make(a.depth, a.base, 7, 3, 8)
    opt = torch.optim.Adam(list(P.values()), lr=1e-3)
    x = torch.rand(a.batch, 7, a.size, a.size) - 0.5
    t = torch.rand(a.batch, 3, a.size, a.size) - 0.5

    def step():
        opt.zero_grad()
        loss = F.l1_loss(net(x), t)
        loss.backward()
        opt.step()

    step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    sps = a.steps / (time.perf_counter() - t0)
    with torch.no_grad():
        net(x)
        t0 = time.perf_counter()
        for _ in range(a.steps):
            net(x)
        mps = a.steps * a.batch * a.size * a.size / (time.perf_counter() - t0) * 1e-6
    print("pytorch U-Net depth %d base %d 7->3, %dx%d batch %d: %.4f train steps/s, %.3f MP/s inference"
          % (a.depth, a.base, a.size, a.size, a.batch, sps, mps))


if __name__ == "__main__":
    main()
