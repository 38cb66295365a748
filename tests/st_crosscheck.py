#!/usr/bin/env python3
"""st_crosscheck.py - read a safetensors file written by moebench with another reader
and write the tensors back another way, so test_safetensors checks the format both ways.

usage: st_crosscheck.py stdlib|safetensors IN OUT

stdlib:      parse IN with struct and json only (Python's standard library).
safetensors: parse IN with the `safetensors` package (the reference implementation) and
             write OUT with safetensors.numpy, and OUT.ref with the same tensors and the
             metadata {"format": "pt"} only; exits 77 when either module is absent.
Both decode every tensor to float32 values and write OUT with every tensor as F32, in
reverse order, with IN's metadata plus {"reader": MODE}. The stdlib writer leaves the
header unpadded and spaced (json.dumps defaults), which a reader must accept too.
"""
import json
import struct
import sys


def decode(dtype, raw):
    """Float values of raw little-endian bytes of dtype (F32 or BF16)."""
    if dtype == "F32":
        return list(struct.unpack("<%df" % (len(raw) // 4), raw))
    if dtype == "BF16":
        halves = struct.unpack("<%dH" % (len(raw) // 2), raw)
        return [struct.unpack("<f", struct.pack("<I", h << 16))[0] for h in halves]
    raise SystemExit("unexpected dtype %s" % dtype)


def read_stdlib(path):
    """(metadata, [(name, shape, values)]) parsed with struct and json."""
    blob = open(path, "rb").read()
    (hlen,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + hlen].decode("utf-8"))
    if hlen % 8 != 0 or blob[8 + hlen - 1:8 + hlen] not in (b"}", b" "):
        raise SystemExit("header length %d is not padded to 8 bytes" % hlen)
    data = blob[8 + hlen:]
    meta = header.pop("__metadata__", {}) or {}
    out = []
    for name, info in header.items():
        begin, end = info["data_offsets"]
        out.append((name, info["shape"], decode(info["dtype"], data[begin:end])))
    return meta, out


def write_stdlib(path, meta, tensors):
    """Writes tensors as F32 with a plain json.dumps header (spaces, no padding)."""
    header, data, at = {"__metadata__": meta}, b"", 0
    for name, shape, values in tensors:
        raw = struct.pack("<%df" % len(values), *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [at, at + len(raw)]}
        data += raw
        at += len(raw)
    text = json.dumps(header).encode("utf-8")
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def via_safetensors(src, dst):
    """Reads src and writes dst with the reference package."""
    try:
        import numpy as np
        from safetensors import deserialize, safe_open
        from safetensors.numpy import save_file
    except ImportError as e:
        print("skipped: %s" % e)
        sys.exit(77)
    with safe_open(src, framework="numpy") as f:
        meta = f.metadata() or {}
    tensors = [(n, list(i["shape"]), decode(i["dtype"], bytes(i["data"])))
               for n, i in deserialize(open(src, "rb").read())]
    meta = dict(meta, reader="safetensors")
    arrays = {n: np.array(v, dtype=np.float32).reshape(s) for n, s, v in reversed(tensors)}
    save_file(arrays, dst, metadata=meta)
    # The same tensors with one metadata key, for a byte-for-byte comparison with
    # moebench's writer (the reference orders F32 tensors by name).
    save_file(arrays, dst + ".ref", metadata={"format": "pt"})


def main():
    mode, src, dst = sys.argv[1:4]
    if mode == "safetensors":
        via_safetensors(src, dst)
        return
    meta, tensors = read_stdlib(src)
    write_stdlib(dst, dict(meta, reader="stdlib"), list(reversed(tensors)))


if __name__ == "__main__":
    main()
