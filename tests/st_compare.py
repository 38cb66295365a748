#!/usr/bin/env python3
"""st_compare.py A.safetensors B.safetensors: how far apart the F32 tensors of two
safetensors files (same names and shapes) are. Prints 'normrel <value> <tensor>' (the
largest per-tensor ||a - b|| / ||a||) and 'maxabs <value> <tensor>' (the largest element
difference), exit 0; or exit 1 with the reason when names or shapes differ. The two
figures are the ones a test of training equality can bound: AdamW divides each gradient
by its own running RMS, so an element whose gradient is of rounding size can move by up
to about lr per step whatever the summation order (bounded by maxabs), while the tensors
as a whole agree to FP32 summation accuracy (normrel). Standard library only."""
import json
import struct
import sys


def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in head.items():
        if name == "__metadata__":
            continue
        lo, hi = t["data_offsets"]
        out[name] = (t["shape"], struct.unpack("<%df" % ((hi - lo) // 4), data[lo:hi]))
    return out


def main():
    a, b = load(sys.argv[1]), load(sys.argv[2])
    if a.keys() != b.keys():
        print("tensor names differ")
        return 1
    rel, rel_at, mab, mab_at = 0.0, "", 0.0, ""
    for name in a:
        if a[name][0] != b[name][0]:
            print("shape of %s differs" % name)
            return 1
        d2 = n2 = 0.0
        for x, y in zip(a[name][1], b[name][1]):
            d2 += (x - y) * (x - y)
            n2 += x * x
            if abs(x - y) > mab:
                mab, mab_at = abs(x - y), name
        r = (d2 / n2) ** 0.5 if n2 > 0 else d2 ** 0.5
        if r > rel:
            rel, rel_at = r, name
    print("normrel %.3e %s" % (rel, rel_at))
    print("maxabs %.3e %s" % (mab, mab_at))
    return 0


sys.exit(main())
