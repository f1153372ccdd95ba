"""compare_runs.py: do training runs agree?  (Python standard library only.)

    compare_runs.py --st_dump BIN [--rtol 1e-5] [--keys loss,grad_norm] [--metrics_only] REF_DIR DIR...

For each DIR: metrics.jsonl has the same steps as REF_DIR's with losses and
grad norms (--keys) within rtol, and adapter_model.safetensors holds the same
tensors with ||a - b|| / ||b|| <= rtol each (read through our st_dump tool),
unless --metrics_only.
"""
import argparse, json, math, subprocess, sys


def metrics(d):
    with open(f"{d}/metrics.jsonl") as f:
        return [json.loads(line) for line in f if line.strip()]


def tensors(st_dump, d):
    out = subprocess.run([st_dump, f"{d}/adapter_model.safetensors"], check=True, capture_output=True, text=True)
    return {t["name"]: [float(v) for v in t["values"]] for t in json.loads(out.stdout)["tensors"]}


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--st_dump", required=True)
    ap.add_argument("--rtol", type=float, default=1e-5)
    ap.add_argument("--keys", default="loss,grad_norm")
    ap.add_argument("--metrics_only", action="store_true")
    ap.add_argument("ref")
    ap.add_argument("dirs", nargs="+")
    a = ap.parse_args()
    keys = a.keys.split(",")
    ref_m, ref_t = metrics(a.ref), {} if a.metrics_only else tensors(a.st_dump, a.ref)
    failures = 0
    for d in a.dirs:
        m, t = metrics(d), {} if a.metrics_only else tensors(a.st_dump, d)
        worst = 0.0
        if len(m) != len(ref_m):
            print(f"FAIL {d}: {len(m)} logged steps, reference has {len(ref_m)}")
            failures += 1
            continue
        for x, y in zip(m, ref_m):
            for key in keys:
                e = rel(x[key], y[key])
                worst = max(worst, e)
                if not e <= a.rtol:
                    print(f"FAIL {d}: step {x['step']} {key} {x[key]} vs {y[key]} (rel {e:.2e})")
                    failures += 1
        if set(t) != set(ref_t):
            print(f"FAIL {d}: adapter tensors differ: {sorted(set(t) ^ set(ref_t))[:4]}")
            failures += 1
            continue
        for name, b in ref_t.items():
            x = t[name]
            num = math.sqrt(sum((p - q) ** 2 for p, q in zip(x, b)))
            den = max(math.sqrt(sum(q * q for q in b)), 1e-30)
            e = num / den if len(x) == len(b) else math.inf
            worst = max(worst, e)
            if not e <= a.rtol:
                print(f"FAIL {d}: {name} rel {e:.2e}")
                failures += 1
        print(f"{'ok  ' if not failures else '    '} {d}: worst relative difference {worst:.2e}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
