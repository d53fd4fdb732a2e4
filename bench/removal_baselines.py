#!/usr/bin/python3
"""Classical inpainting baselines for `rushes eval removal`.

Runs OpenCV's Telea (fast marching) and Navier-Stokes inpainting
(cv2.inpaint, Debian's python3-opencv) on every frame of a sequence, one
frame at a time (neither method looks at other frames), and writes the
results as 8-bit PNGs under OUT/telea/ and OUT/ns/ with the input's file
names. Prints one JSON object: {"telea": {"seconds": s, "frames": n},
"ns": {...}} where seconds is the inpainting time only (no file I/O).

usage: removal_baselines.py --frames DIR --masks DIR --out DIR [--radius 3]
Frames and masks are paired by sorted file name; a mask pixel >= 128 is hole.
"""
import argparse
import json
import os
import sys
import time

import cv2
import numpy as np

EXTS = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".exr", ".dpx")


def listing(d):
    return sorted(f for f in os.listdir(d) if f.lower().endswith(EXTS))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", required=True)
    ap.add_argument("--masks", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--radius", type=float, default=3.0)
    a = ap.parse_args()
    frames = listing(a.frames)
    masks = listing(a.masks)
    if not frames or len(frames) != len(masks):
        print(f"removal_baselines: {len(frames)} frames but {len(masks)} masks", file=sys.stderr)
        return 2
    methods = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}
    secs = {m: 0.0 for m in methods}
    for m in methods:
        os.makedirs(os.path.join(a.out, m), exist_ok=True)
    for fn, mn in zip(frames, masks):
        img = cv2.imread(os.path.join(a.frames, fn), cv2.IMREAD_COLOR)
        msk = cv2.imread(os.path.join(a.masks, mn), cv2.IMREAD_GRAYSCALE)
        if img is None or msk is None or img.shape[:2] != msk.shape[:2]:
            print(f"removal_baselines: cannot read {fn} / {mn} or sizes differ", file=sys.stderr)
            return 1
        if img.dtype != np.uint8:
            img = (img / 257).astype(np.uint8)
        hole = (msk >= 128).astype(np.uint8) * 255
        for m, flag in methods.items():
            t0 = time.perf_counter()
            res = cv2.inpaint(img, hole, a.radius, flag)
            secs[m] += time.perf_counter() - t0
            cv2.imwrite(os.path.join(a.out, m, os.path.splitext(fn)[0] + ".png"), res)
    print(json.dumps({m: {"seconds": secs[m], "frames": len(frames)} for m in methods}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
