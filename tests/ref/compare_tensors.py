#!/usr/bin/env python3
"""compare_tensors.py A.safetensors B.safetensors [--rtol R] [--only-in-b]

B is the truth.  Every tensor of B must be in A with the same shape, no NaN or
Inf on either side, and ||a - b|| / max(||b||, tiny) <= rtol (norms over the
whole tensor, in float64).  Prints one line per tensor; exits 1 on any failure.
Keys of A that B lacks are reported and are a failure too, unless --only-in-b.
"""
import argparse
import sys

import numpy as np
from safetensors.numpy import load_file

TINY = 1e-30


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--rtol", type=float, default=1e-5)
    ap.add_argument("--only-in-b", action="store_true",
                    help="do not fail on tensors that only A has")
    args = ap.parse_args()

    A = load_file(args.a)
    B = load_file(args.b)
    bad = 0
    worst = 0.0
    for key in sorted(B):
        b = B[key].astype(np.float64)
        if key not in A:
            print(f"MISSING {key} (shape {list(b.shape)}) not in {args.a}")
            bad += 1
            continue
        a = A[key].astype(np.float64)
        if a.shape != b.shape:
            print(f"SHAPE   {key}: {list(a.shape)} vs reference {list(b.shape)}")
            bad += 1
            continue
        if not np.all(np.isfinite(a)) or not np.all(np.isfinite(b)):
            print(f"NONFINITE {key}: NaN/Inf in {'A' if not np.all(np.isfinite(a)) else 'B'}")
            bad += 1
            continue
        nb = np.linalg.norm(b)
        err = np.linalg.norm(a - b) / max(nb, TINY)
        worst = max(worst, err)
        ok = err <= args.rtol
        print(f"{'ok  ' if ok else 'FAIL'} {key} {list(b.shape)} rel_err={err:.3e} |b|={nb:.4e}")
        if not ok:
            bad += 1
    extra = sorted(set(A) - set(B))
    for key in extra:
        print(f"{'note' if args.only_in_b else 'EXTRA'} {key} only in {args.a}")
    if not args.only_in_b:
        bad += len(extra)
    print(f"compare_tensors: {len(B)} tensors, worst rel_err {worst:.3e}, rtol {args.rtol:g}, "
          f"{bad} failure(s)")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
