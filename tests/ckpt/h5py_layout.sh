#!/bin/sh
# Proves: h5py (Debian's python3-h5py) opens both checkpoint layouts and
# finds every dataset and attribute doc/checkpoint-format.md documents, with
# checksums as documented; the FULL layout's adapter tensors at the last
# step equal the exported adapter_model.safetensors, and the SHARDED
# layout's unit buffers hold the same numbers.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/fsdp/fsdp_lib.sh"
. "$top_srcdir/tests/ckpt/ckpt_lib.sh"

/usr/bin/python3 -c 'import h5py, numpy' 2> /dev/null ||
    skip_unless_required "no h5py and numpy under /usr/bin/python3 (Debian's python3-h5py, python3-numpy)"
"$MAKE_MODEL" --out "$SCRATCH/m" --rows 24 --layers 2
FSDP_STATE_DICT_TYPE=FULL_STATE_DICT ckpt_train full 3 4
FSDP_STATE_DICT_TYPE=SHARDED_STATE_DICT ckpt_train sharded 3 4
/usr/bin/python3 - "$SCRATCH" <<'PY'
import json, struct, sys
import h5py, numpy as np
d = sys.argv[1]

def safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    out = {}
    for k, v in head.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        out[k] = np.frombuffer(raw[8 + n + a:8 + n + b], dtype="<f4").reshape(v["shape"])
    return out

adapter = safetensors(f"{d}/full/adapter_model.safetensors")
root_attrs = ["format", "format_version", "layout", "global_step", "epoch", "steps_per_epoch", "adam_step",
              "seed", "world_size", "base_model_fingerprint", "config", "rng"]
for layout in ("full", "sharded"):
    f = h5py.File(f"{d}/{layout}/checkpoint-8.h5", "r")
    for a in root_attrs:
        assert a in f.attrs, f"{layout}: root attribute {a} missing"
    assert f.attrs["format"] == b"shardtune-checkpoint" and f.attrs["format_version"] == 1
    assert f.attrs["layout"] == layout.encode() and f.attrs["global_step"] == 8 and f.attrs["world_size"] == 3
    assert json.loads(f.attrs["config"])[0].startswith("--"), f.attrs["config"]
    names = []
    f.visit(lambda n: names.append(n) if isinstance(f[n], h5py.Dataset) else None)
    for n in names:
        assert "checksum" in f[n].attrs, f"{layout}: {n} has no checksum"
    if layout == "full":
        for key, value in adapter.items():
            for group in ("adapter", "exp_avg", "exp_avg_sq"):
                assert f"{group}/{key}" in f, f"full: {group}/{key} missing"
            got = f[f"adapter/{key}"][()]
            assert got.shape == value.shape and np.array_equal(got, value), f"full: {key} differs from the adapter"
        print(f"full: {len(adapter)} adapter tensors equal the exported adapter, moments present")
        full = {k: f[f"adapter/{k}"][()] for k in adapter}
    else:
        units = sorted(f["units"])
        for u in units:
            for kind in ("param", "exp_avg", "exp_avg_sq"):
                assert kind in f["units"][u], f"sharded: units/{u}/{kind} missing"
        flat = np.concatenate([f["units"][u]["param"][()] for u in units])
        ref = np.concatenate([full[k].ravel() for k in sorted(full, key=lambda k: (int(k.split(".")[4]), 0))])
        assert np.array_equal(np.sort(flat), np.sort(ref)), "sharded: unit buffers hold other numbers"
        print(f"sharded: {len(units)} units with param, exp_avg, exp_avg_sq; same numbers as the full layout")
PY
echo PASS
