"""TensorBoard event files of a shardtune run, read by TensorBoard's own
reader, against the run's metrics.jsonl (tests/ref/tensorboard_matches_metrics.sh).

  tensorboard_check.py match OUTPUT_DIR
      every scalar of OUTPUT_DIR/runs (EventAccumulator, as TensorBoard loads
      a run: all files, restarts purged) is float32 of the metrics.jsonl value
      at its step, tag for tag and step for step, nothing missing or extra.
  tensorboard_check.py crc EVENTS_FILE
      TensorBoard's record reader reads every record of the file; with one
      byte flipped in a record's data, or in its length, it refuses that
      record on its CRC32C check.
"""
import json
import os
import sys

import numpy as np

# the metrics.jsonl key of each TensorBoard tag, as train logs them
TRAIN_TAGS = {"train/loss": "loss", "train/grad_norm": "grad_norm", "train/learning_rate": "learning_rate",
              "train/epoch": "epoch", "train/tokens_per_second": "tokens_per_second"}


def expected(metrics_path):
    want = {}
    for line in open(metrics_path):
        row = json.loads(line)
        step = row["step"]
        if "eval_loss" in row:
            want.setdefault("eval/loss", {})[step] = row["eval_loss"]
            continue
        for tag, key in TRAIN_TAGS.items():
            want.setdefault(tag, {})[step] = row[key]
        want.setdefault("train/peak_mib", {})[step] = row["peak_bytes"] / 1048576
    return want


def match(out_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(os.path.join(out_dir, "runs"), size_guidance={"scalars": 0})
    acc.Reload()
    want = expected(os.path.join(out_dir, "metrics.jsonl"))
    got_tags = sorted(acc.Tags()["scalars"])
    assert got_tags == sorted(want), f"tags {got_tags}, metrics.jsonl has {sorted(want)}"
    n = 0
    for tag in got_tags:
        got = [(s.step, s.value) for s in acc.Scalars(tag)]
        steps = [s for s, _ in got]
        assert steps == sorted(want[tag]), f"{tag}: steps {steps}, metrics.jsonl has {sorted(want[tag])}"
        for step, value in got:
            ref = float(np.float32(want[tag][step]))
            assert value == ref, f"{tag} at step {step}: {value!r}, metrics.jsonl's float32 {ref!r}"
            n += 1
    files = sorted(f for f in os.listdir(os.path.join(out_dir, "runs")) if "tfevents" in f)
    print(f"tensorboard: {n} scalars in {len(got_tags)} tags from {len(files)} file(s) = metrics.jsonl")


def read_all(path):
    """The records of path through TensorBoard's reader (its CRC checks)."""
    from tensorboard.compat.tensorflow_stub import errors, pywrap_tensorflow
    reader = pywrap_tensorflow.PyRecordReader_New(path)
    records = []
    while True:
        try:
            reader.GetNext()
        except errors.OutOfRangeError:
            return records, None
        except errors.DataLossError as err:
            return records, str(err)
        records.append(reader.record())


def crc(path):
    from tensorboard.compat.proto import event_pb2
    records, err = read_all(path)
    assert err is None, err
    first = event_pb2.Event.FromString(records[0])
    assert first.file_version == "brain.Event:2", first
    data = open(path, "rb").read()
    # the second record: header (8 + 4 bytes) at the end of the first
    second = 8 + 4 + len(records[0]) + 4
    for where, offset in (("data", second + 12 + 3), ("length", second + 1)):
        bad = bytearray(data)
        bad[offset] ^= 0x10
        bad_path = f"{path}.{where}"
        open(bad_path, "wb").write(bytes(bad))
        got, err = read_all(bad_path)
        os.unlink(bad_path)
        assert err is not None and "crc32" in err and len(got) == 1, (where, len(got), err)
        print(f"a byte flipped in the second record's {where}: {err.split(': ')[-1].split(' ', 1)[-1]}")
    print(f"tensorboard's reader: {len(records)} records, CRC32C checked")


if __name__ == "__main__":
    {"match": match, "crc": crc}[sys.argv[1]](sys.argv[2])
