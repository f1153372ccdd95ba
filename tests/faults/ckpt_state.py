"""Checkpoint state as h5py (Debian's python3-h5py) reads it, outside shardtune's C code.

  ckpt_state.py same A B     exit 0 when A and B hold bitwise the same trainable state:
                             every dataset (parameters, exp_avg, exp_avg_sq) and adam_step
  ckpt_state.py differ A B   exit 0 when some parameter dataset differs (the state moved)
  ckpt_state.py advance A OUT STEP
                             OUT: a copy of A whose data position (global_step, epoch) is STEP;
                             the parameters, moments and adam_step stay A's
"""
import shutil
import sys

import h5py
import numpy as np


def datasets(f):
    out = {}
    f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def same(a, b):
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        da, db = datasets(fa), datasets(fb)
        if sorted(da) != sorted(db):
            print(f"{a} and {b} hold other datasets")
            return 1
        bad = [n for n in da if da[n].tobytes() != db[n].tobytes()]
        steps = int(fa.attrs["adam_step"]), int(fb.attrs["adam_step"])
        print(f"{a} vs {b}: {len(da)} datasets, {len(bad)} differ; adam_step {steps[0]} and {steps[1]}")
        return 0 if not bad and steps[0] == steps[1] else 1


def differ(a, b):
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        da, db = datasets(fa), datasets(fb)
        moved = [n for n in da if ("param" in n or n.startswith("adapter")) and not np.array_equal(da[n], db[n])]
        print(f"{a} vs {b}: {len(moved)} parameter datasets differ")
        return 0 if moved else 1


def advance(a, out, step):
    shutil.copyfile(a, out)
    with h5py.File(out, "r+") as f:
        f.attrs["global_step"] = np.int64(step)
        f.attrs["epoch"] = np.int64(step // int(f.attrs["steps_per_epoch"]))
    return 0


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "same":
        sys.exit(same(sys.argv[2], sys.argv[3]))
    if cmd == "differ":
        sys.exit(differ(sys.argv[2], sys.argv[3]))
    if cmd == "advance":
        sys.exit(advance(sys.argv[2], sys.argv[3], int(sys.argv[4])))
    sys.exit(f"unknown command {cmd}")
