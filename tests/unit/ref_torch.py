#!/usr/bin/python3
"""ref_torch.py DIR: PyTorch (float64) side of ref_test.c's comparison.

For every DIR/<name>.json (op, params, input shapes, dy shape) it reads
DIR/<name>.in (the inputs then dy, float64 little-endian, concatenated),
runs the op in torch with autograd and writes DIR/<name>.out: the forward
output (or the loss) followed by the gradient of each input, float64.
Adam cases write the parameters, exp_avg and exp_avg_sq after the steps.
"""
import glob
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(1)


def numel(shape):
    return int(math.prod(shape)) if shape else 0


def run(spec, flat):
    shapes = spec["inputs"]
    at = 0
    ins = []
    for s in shapes:
        k = numel(s)
        ins.append(torch.tensor(flat[at:at + k].reshape(s), dtype=torch.float64, requires_grad=True))
        at += k
    op = spec["op"]
    if op in ("adam", "adamw"):
        p = ins[0].detach().clone().requires_grad_(True)
        grads = ins[1].detach()
        cls = torch.optim.AdamW if op == "adamw" else torch.optim.Adam
        opt = cls([p], lr=spec["lr"], betas=(spec["beta1"], spec["beta2"]), eps=spec["eps"],
                  weight_decay=spec["wd"], foreach=False)
        for s in range(spec["steps"]):
            p.grad = grads[s].clone()
            opt.step()
        st = opt.state[p]
        return [p.detach(), st["exp_avg"], st["exp_avg_sq"]]
    dy_shape = spec["dy"]
    dy = torch.tensor(flat[at:at + numel(dy_shape)].reshape(dy_shape)) if dy_shape else None
    grad_of = ins
    if op == "conv":
        y = F.conv2d(ins[0], ins[1], stride=spec["stride"], padding=spec["pad"])
    elif op == "relu":
        y = F.relu(ins[0])
    elif op == "leaky":
        y = F.leaky_relu(ins[0], spec["slope"])
    elif op == "silu":
        y = F.silu(ins[0])
    elif op == "avgpool2":
        y = F.avg_pool2d(ins[0], 2)
    elif op == "up_nearest":
        y = F.interpolate(ins[0], scale_factor=2, mode="nearest")
    elif op == "up_bilinear":
        y = F.interpolate(ins[0], scale_factor=2, mode="bilinear", align_corners=False)
    elif op == "groupnorm":
        y = F.group_norm(ins[0], spec["groups"], ins[1], ins[2], spec["eps"])
    else:
        p, t, m = ins
        grad_of = [p]
        if op == "l1":
            y = F.l1_loss(p, t)
        elif op == "mse":
            y = F.mse_loss(p, t)
        elif op == "masked_l1":
            w = m.detach().clamp(min=0).expand_as(p)
            y = (w * (p - t).abs()).sum() / w.sum()
        elif op == "grad":
            gx = lambda a: a[..., :, 1:] - a[..., :, :-1]
            gy = lambda a: a[..., 1:, :] - a[..., :-1, :]
            y = F.l1_loss(gx(p), gx(t)) + F.l1_loss(gy(p), gy(t))
        else:
            raise SystemExit("ref_torch.py: unknown op " + op)
    if dy is None:
        y.backward()
    else:
        y.backward(dy)
    return [y.detach()] + [x.grad for x in grad_of]


def main():
    d = sys.argv[1]
    for path in sorted(glob.glob(os.path.join(d, "*.json"))):
        name = path[:-5]
        with open(path) as f:
            spec = json.load(f)
        flat = np.fromfile(name + ".in", dtype="<f8")
        outs = run(spec, flat)
        np.concatenate([o.detach().reshape(-1).numpy().astype("<f8") for o in outs]).tofile(name + ".out")


if __name__ == "__main__":
    main()
