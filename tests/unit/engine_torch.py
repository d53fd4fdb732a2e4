#!/usr/bin/python3
"""engine_torch.py: the PyTorch twin of engine/unet.c, for engine_torch_test.

Reads a dump written by the C test: one JSON line (config, parameter names
and shapes in the engine's order, batch shapes), then raw little-endian
float32: every parameter, the input batch, the target batch. Trains the
same network from those weights on that batch with the same optimiser and
prints one loss per step (the loss before that step's update).
Usage: engine_torch.py DUMP STEPS
"""
import json
import math
import sys

import numpy as np
import torch
import torch.nn.functional as F


def main():
    path, steps = sys.argv[1], int(sys.argv[2])
    torch.set_num_threads(1)
    with open(path, "rb") as f:
        head = json.loads(f.readline())
        raw = np.frombuffer(f.read(), dtype="<f4")
    off = 0
    P = {}
    for name, shape in head["params"]:
        n = int(np.prod(shape))
        P[name] = torch.tensor(raw[off:off + n].reshape(shape).copy(), requires_grad=True)
        off += n
    xs, ts = head["input"], head["target"]
    x = torch.tensor(raw[off:off + int(np.prod(xs))].reshape(xs).copy())
    off += int(np.prod(xs))
    t = torch.tensor(raw[off:off + int(np.prod(ts))].reshape(ts).copy())
    cfg = head["cfg"]
    depth, groups = cfg["depth"], cfg["norm_groups"]
    act = {"relu": F.relu, "silu": F.silu,
           "leaky": lambda v: F.leaky_relu(v, cfg["slope"])}[cfg["act"]]

    def block(name, v, k=3, norm=True, use_act=True):
        v = F.conv2d(v, P[name + ".conv.w"], P[name + ".conv.b"], padding=k // 2)
        if norm and groups > 0:
            g = math.gcd(v.shape[1], groups)
            v = F.group_norm(v, g, P[name + ".norm.gamma"], P[name + ".norm.beta"], eps=1e-5)
        return act(v) if use_act else v

    def net(v):
        skips = []
        for l in range(depth):
            if l > 0:
                v = F.avg_pool2d(skips[-1], 2)
            v = block("enc%d.0" % l, v)
            v = block("enc%d.1" % l, v)
            skips.append(v)
        for l in range(depth - 2, -1, -1):
            if cfg["up"] == "bilinear":
                v = F.interpolate(v, scale_factor=2, mode="bilinear", align_corners=False)
            else:
                v = F.interpolate(v, scale_factor=2, mode="nearest")
            v = torch.cat([v, skips[l]], 1)
            v = block("dec%d.0" % l, v)
            v = block("dec%d.1" % l, v)
        return block("head", v, k=1, norm=False, use_act=False)

    opt_cls = torch.optim.AdamW if cfg["decoupled"] else torch.optim.Adam
    opt = opt_cls(list(P.values()), lr=cfg["lr"], betas=(cfg["beta1"], cfg["beta2"]), eps=cfg["eps"],
                  weight_decay=cfg["weight_decay"])
    loss_fn = {"mse": F.mse_loss, "l1": F.l1_loss}[cfg["loss"]]
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(net(x), t)
        loss.backward()
        opt.step()
        print("%.9g" % loss.item())


if __name__ == "__main__":
    main()
