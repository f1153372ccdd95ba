#!/usr/bin/env python3
"""check_plot.py: checks shardtune's loss plots without an imaging library.

  check_plot.py png FILE.png METRICS.jsonl   one run: 1200x700, and the loss
      colour (#1f77b4) in the column of each logged step (all but one: the
      legend may hide one), higher loss drawn higher up
  check_plot.py overlay FILE.png N           N runs: each run's colour
      (matplotlib's tab10, in order) in many columns of the plot area
  check_plot.py svg FILE.svg                 parses as XML, root <svg>

The layout is plot_draw.h's: plot area x 90..1100, y 60..630; x maps the
first..last logged step linearly (a single step s: s-1..s+1).
"""
import json
import math
import re
import struct
import sys
import xml.etree.ElementTree as ET
import zlib

import numpy as np

W, H = 1200, 700
LEFT, RIGHT, TOP, BOTTOM = 90, 1100, 60, 630
TAB10 = [0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd, 0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf]


def read_png(path):
    """RGB(A) 8-bit non-interlaced PNG (what cairo writes) -> HxWx3 uint8."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path}: not a PNG"
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        assert zlib.crc32(kind + body) == struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0], f"{path}: bad CRC"
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = ihdr
    assert depth == 8 and ctype in (2, 6) and interlace == 0, f"{path}: unexpected PNG format {ihdr}"
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = w * bpp
    out = np.zeros((h, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.int32)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = np.frombuffer(raw, dtype=np.uint8, count=stride, offset=y * (stride + 1) + 1).astype(np.int32)
        if f == 0:
            cur = line
        elif f == 2:
            cur = (line + prev) & 255
        elif f == 1:  # Sub: a running sum along each channel
            cur = np.cumsum(line.reshape(-1, bpp), axis=0).reshape(-1) & 255
        else:  # Average, Paeth: sequential
            cur, L, P = [0] * stride, line.tolist(), prev.tolist()
            for i in range(stride):
                a = cur[i - bpp] if i >= bpp else 0
                b = P[i]
                if f == 3:
                    cur[i] = (L[i] + ((a + b) >> 1)) & 255
                else:
                    c = P[i - bpp] if i >= bpp else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pr = a if pa <= pb and pa <= pc else b if pb <= pc else c
                    cur[i] = (L[i] + pr) & 255
            cur = np.array(cur, dtype=np.int32)
        out[y] = cur
        prev = cur
    return w, h, out.reshape(h, w, bpp)[:, :, :3]


def near(img, rgb, tol=60):
    c = np.array([(rgb >> 16) & 255, (rgb >> 8) & 255, rgb & 255], dtype=np.int32)
    return np.abs(img.astype(np.int32) - c).sum(axis=2) <= tol


def check_png(path, metrics):
    w, h, img = read_png(path)
    assert (w, h) == (W, H), f"{path}: {w}x{h}, want {W}x{H}"
    pts = []
    for line in open(metrics):
        # bare nan/inf (printf's) as Python's json reads them; such values are not drawn
        r = json.loads(re.sub(r"(?<![\w\"])(-?)(nan|inf)\b", lambda m: m[1] + ("NaN" if m[2] == "nan" else "Infinity"), line))
        if "step" in r and isinstance(r.get("loss"), (int, float)) and math.isfinite(r["loss"]):
            pts.append((r["step"], r["loss"]))
    s0, s1 = pts[0][0], pts[-1][0]
    if s0 == s1:
        s0, s1 = s0 - 1, s1 + 1
    mask = near(img, TAB10[0])
    found = []
    for step, loss in pts:
        x = round(LEFT + (step - s0) / (s1 - s0) * (RIGHT - LEFT))
        ys = np.nonzero(mask[TOP:BOTTOM + 1, max(x - 1, 0):x + 2].any(axis=1))[0]
        if len(ys):
            found.append((loss, TOP + ys.mean(), step))
    missing = len(pts) - len(found)
    assert missing <= 1, f"{path}: the loss colour is missing in the columns of {missing} of {len(pts)} steps"
    lo, hi = min(p[1] for p in pts), max(p[1] for p in pts)
    for la, ya, sa in found:  # higher loss, higher up (smaller y), where the difference is clear
        for lb, yb, sb in found:
            if la - lb > 0.2 * (hi - lo):
                assert ya < yb, f"{path}: step {sa} (loss {la}) drawn at y {ya:.0f}, below step {sb} (loss {lb}, y {yb:.0f})"
    cols = mask[TOP:BOTTOM + 1, LEFT:RIGHT + 1].any(axis=0).sum()
    print(f"{path}: {w}x{h}, loss colour at {len(found)}/{len(pts)} logged steps, in {cols} columns")
    assert len(pts) < 2 or cols > 0.8 * (RIGHT - LEFT), f"{path}: the loss line covers only {cols} columns"


def check_overlay(path, n):
    w, h, img = read_png(path)
    assert (w, h) == (W, H), f"{path}: {w}x{h}, want {W}x{H}"
    for r in range(n):
        cols = near(img, TAB10[r])[TOP:BOTTOM + 1, LEFT:RIGHT + 1].any(axis=0).sum()
        print(f"{path}: run {r + 1} colour #{TAB10[r]:06x} in {cols} columns")
        assert cols > 300, f"{path}: run {r + 1}'s colour is in only {cols} columns"


def check_svg(path):
    root = ET.parse(path).getroot()
    assert root.tag.rsplit("}", 1)[-1] == "svg", f"{path}: root element <{root.tag}>"
    n = sum(1 for e in root.iter() if e.tag.rsplit("}", 1)[-1] == "path")
    assert n > 10, f"{path}: only {n} paths"
    print(f"{path}: <svg> {root.get('width')} x {root.get('height')}, {n} paths")


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "png":
        check_png(sys.argv[2], sys.argv[3])
    elif what == "overlay":
        check_overlay(sys.argv[2], int(sys.argv[3]))
    elif what == "svg":
        check_svg(sys.argv[2])
    else:
        sys.exit(f"check_plot.py: {what}: not png, overlay or svg")
