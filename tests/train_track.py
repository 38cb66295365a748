#!/usr/bin/env python3
"""train_track.py CPU.json DEV.json [TOL] - whether a `moebench train --backend cuda` run
tracks the CPU run of the same options (seed, data, steps): prints each step's training
and validation losses side by side with their relative difference, and exits 1 when any
differs by more than TOL (default 0.05: the device's attention core takes BF16 operands,
and a routing tie can flip, so the runs agree to a few percent, not bit for bit), or when
the curves have different steps. Used by scripts/gpu-check.sh PHASE=table."""
import json
import math
import sys


def curve(path):
    doc = json.load(open(path))
    return {p["step"]: p for p in doc["summary"]["train"]["curve"]}


def main():
    a, b = curve(sys.argv[1]), curve(sys.argv[2])
    tol = float(sys.argv[3]) if len(sys.argv) > 3 else 0.05
    if sorted(a) != sorted(b):
        print("train_track: the runs have different steps: %s vs %s" % (sorted(a), sorted(b)))
        return 1
    worst, bad = 0.0, 0
    print("step  loss(cpu)  loss(dev)  rel      val(cpu)  val(dev)  rel")
    for s in sorted(a):
        row = ["%4d" % s]
        for k in ("loss", "val_loss"):
            x, y = a[s].get(k), b[s].get(k)
            if x is None or y is None or (isinstance(x, float) and math.isnan(x)):
                row.append("%9s  %9s  %-7s" % ("-", "-", "-"))
                continue
            rel = abs(x - y) / abs(x) if x else abs(y)
            worst = max(worst, rel)
            bad += not rel <= tol
            row.append("%9.4f  %9.4f  %.1e" % (x, y, rel))
        print("  ".join(row))
    print("train_track: largest relative difference %.2e (tolerance %.0e): %s"
          % (worst, tol, "tracks" if not bad else "%d values DIFFER" % bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
