#!/usr/bin/python3
"""safetensors_read.py [--values] FILE: read a .safetensors file with nothing
but json + numpy, as any outside tool would, and print what it holds.

This is the independent reader the checkpoint tests use to show that a file
written by Rushes is plain safetensors: 8-byte little-endian header length,
JSON header, raw little-endian tensors at data_offsets after the header.

Output, one item per line (tab-separated):
  header_bytes<TAB>N
  meta<TAB>KEY<TAB>VALUE                 (one per __metadata__ pair)
  tensor<TAB>NAME<TAB>DTYPE<TAB>D0,D1,..<TAB>SUM<TAB>MIN<TAB>MAX
  values<TAB>V0 V1 ...                   (with --values: every element, exactly:
                                          floats as Python repr of the float64
                                          widening, integers in decimal)
Exit status 1 with a message on a malformed file.
"""
import json
import struct
import sys

import numpy as np

DTYPES = {
    "BOOL": np.dtype("bool"),
    "U8": np.dtype("u1"),
    "I8": np.dtype("i1"),
    "U16": np.dtype("<u2"),
    "I16": np.dtype("<i2"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),  # widened by hand below
    "U32": np.dtype("<u4"),
    "I32": np.dtype("<i4"),
    "F32": np.dtype("<f4"),
    "U64": np.dtype("<u8"),
    "I64": np.dtype("<i8"),
    "F64": np.dtype("<f8"),
}


def load(path):
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError("truncated: no header length")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise ValueError("header length beyond the file")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    tensors = []
    for name, info in header.items():
        dt = DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        shape = tuple(info["shape"])
        arr = np.frombuffer(data[begin:end], dtype=dt)
        if info["dtype"] == "BF16":
            arr = (arr.astype("<u4") << 16).view("<f4")
        count = int(np.prod(shape)) if shape else 1
        if arr.size != count:
            raise ValueError("%s: shape %s does not match %d bytes" % (name, shape, end - begin))
        tensors.append((name, info["dtype"], shape, arr.reshape(shape)))
    return n, meta, tensors


def fmt(v):
    if isinstance(v, (np.floating, float)):
        return repr(float(v))
    return str(int(v))


def main():
    args = sys.argv[1:]
    values = "--values" in args
    args = [a for a in args if a != "--values"]
    if len(args) != 1:
        sys.exit("usage: safetensors_read.py [--values] FILE")
    try:
        n, meta, tensors = load(args[0])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        sys.exit("%s: %s" % (args[0], exc))
    out = ["header_bytes\t%d" % n]
    for k, v in meta.items():
        out.append("meta\t%s\t%s" % (k, v))
    for name, dtype, shape, arr in tensors:
        flat = arr.reshape(-1)
        wide = flat.astype(np.float64) if flat.size else np.zeros(1)
        out.append("tensor\t%s\t%s\t%s\t%r\t%r\t%r" % (name, dtype, ",".join(str(d) for d in shape),
                                                        float(wide.sum()), float(wide.min()),
                                                        float(wide.max())))
        if values:
            out.append("values\t" + " ".join(fmt(v) for v in flat))
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
