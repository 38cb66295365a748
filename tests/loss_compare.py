#!/usr/bin/env python3
"""loss_compare.py A.json B.json [--all] - the largest relative difference of two
`moebench train` runs' per-step losses (training, MTP, validation) over the steps both
routed alike (equal load_hash; --all: every step), and the first step where their
routing differs (0: none). Prints "MAX_REL FLIP". Used by scripts/*-equal*.sh."""
import json
import sys

every = "--all" in sys.argv[3:]
c = [json.load(open(f))["summary"]["train"]["curve"] for f in sys.argv[1:3]]
flip = next((a["step"] for a, b in zip(*c) if a.get("load_hash") != b.get("load_hash")), 0)
flip = 0 if every else flip
d = [abs(a[k] - b[k]) / abs(a[k]) for a, b in zip(*c)
     for k in ("loss", "mtp_loss", "val_loss")
     if a[k] and (not flip or a["step"] < flip)]
print("%.2e %d" % (max(d), flip))
