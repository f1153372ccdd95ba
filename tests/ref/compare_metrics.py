#!/usr/bin/env python3
"""compare_metrics.py OURS/metrics.jsonl REFERENCE/metrics.jsonl [tolerances]

Compares shardtune's metrics.jsonl with reference_train.py's, step by step:
the same steps (1, 2, ... in order, same count), and relative errors
  loss <= --loss-rtol (1e-5), learning_rate <= --lr-rtol (1e-6),
  grad_norm <= --norm-rtol (1e-5), epoch: absolute <= --epoch-atol (1e-4,
  so that a value rounded to 4 digits as transformers logs it still passes).
A reference value of 0 (the first warmup step's lr) must be matched by |ours| <= 1e-12.
Lines of OURS without "loss" (e.g. a final summary or eval lines) are skipped.
Exits 1 on any failure, printing every step.
"""
import argparse
import json
import math
import sys


def read(path, need_loss=True):
    recs = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"{path}:{n}: not JSON: {e}")
            if need_loss and "loss" not in r:
                continue
            recs.append(r)
    return recs


def rel(a, b):
    if b == 0:
        return 0.0 if abs(a) <= 1e-12 else math.inf
    return abs(a - b) / abs(b)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ours")
    ap.add_argument("reference")
    ap.add_argument("--loss-rtol", type=float, default=1e-5)
    ap.add_argument("--lr-rtol", type=float, default=1e-6)
    ap.add_argument("--norm-rtol", type=float, default=1e-5)
    ap.add_argument("--epoch-atol", type=float, default=1e-4)
    args = ap.parse_args()

    ours, ref = read(args.ours), read(args.reference)
    bad = 0
    if len(ours) != len(ref):
        print(f"FAIL: {len(ours)} logged steps in {args.ours}, reference has {len(ref)}")
        bad += 1
    checks = [("loss", args.loss_rtol), ("learning_rate", args.lr_rtol), ("grad_norm", args.norm_rtol)]
    worst = {k: 0.0 for k, _ in checks}
    for o, r in zip(ours, ref):
        errs = []
        line_bad = False
        if o.get("step") != r["step"]:
            errs.append(f"step {o.get('step')} != {r['step']}")
            line_bad = True
        for key, tol in checks:
            if key not in o or not isinstance(o[key], (int, float)) or not math.isfinite(o[key]):
                errs.append(f"{key} missing or not a finite number: {o.get(key)!r}")
                line_bad = True
                continue
            e = rel(float(o[key]), float(r[key]))
            worst[key] = max(worst[key], e)
            errs.append(f"{key} {o[key]:.9g}/{r[key]:.9g} ({e:.1e})")
            line_bad |= not e <= tol
        if "epoch" not in o or abs(float(o["epoch"]) - r["epoch"]) > args.epoch_atol:
            errs.append(f"epoch {o.get('epoch')!r} != {r['epoch']:.6g}")
            line_bad = True
        bad += line_bad
        print(f"{'FAIL' if line_bad else 'ok  '} step {r['step']}: " + ", ".join(errs))
    print("compare_metrics: worst relative errors " +
          ", ".join(f"{k} {v:.2e}" for k, v in worst.items()) + f"; {bad} failure(s)")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
