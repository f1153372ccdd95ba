"""compare_rendered.py: shardtune chat-template --jsonl outputs against the
oracle's (chat_template_oracle.py), row by row, character for character.

usage: compare_rendered.py ORACLE_DIR OURS_DIR

For every ORACLE_DIR/NAME__ROWS__gN.jsonl, OURS_DIR holds shardtune's lines
for the same rows (and NAME__ROWS__gN.err, its stderr).  A row agrees when
both texts are equal or both sides raise; a row shardtune refuses ("... is
not supported") while transformers renders it is counted as refused; any
other row differs.  A template whose parse shardtune refuses has no lines.
Prints a line per template and a total "rendered N templates, refused M
(whole or in part)"; exits 1 when a row differs.
"""
import collections
import json
import os
import sys


def main():
    oracle_dir, ours_dir = sys.argv[1:3]
    stats = collections.defaultdict(lambda: collections.Counter())
    refusals = {}
    differ_shown = 0
    for fname in sorted(os.listdir(oracle_dir)):
        name = fname.split("__")[0]
        with open(os.path.join(oracle_dir, fname), encoding="utf-8") as f:
            oracle = [json.loads(line) for line in f]
        with open(os.path.join(ours_dir, fname), encoding="utf-8") as f:
            ours = [json.loads(line) for line in f]
        with open(os.path.join(ours_dir, fname[:-len(".jsonl")] + ".err"), encoding="utf-8") as f:
            err = f.read().strip()
        st = stats[name]
        if not ours and oracle and "not supported" in err and len(err.splitlines()) == 1:
            refusals[name] = err
            st["refused"] += len(oracle)
            continue
        if not ours and oracle and err and all(isinstance(o, dict) for o in oracle):
            st["raise"] += len(oracle)  # not a template for either side
            continue
        if len(oracle) != len(ours):
            print(f"{fname}: {len(ours)} rows from shardtune, {len(oracle)} from transformers; stderr: {err[:300]}")
            st["differ"] += 1
            continue
        for i, (o, s) in enumerate(zip(oracle, ours)):
            o_err, s_err = isinstance(o, dict), isinstance(s, dict)
            if not o_err and not s_err and o == s:
                st["equal"] += 1
            elif o_err and s_err:
                st["raise"] += 1
            elif not o_err and s_err and "not supported" in s["error"]:
                st["refused"] += 1
                refusals.setdefault(name, s["error"])
            else:
                st["differ"] += 1
                differ_shown += 1
                if differ_shown <= 5:
                    print(f"{fname}: row {i + 1} differs:\n  transformers: {json.dumps(o, ensure_ascii=False)[:800]}"
                          f"\n  shardtune:    {json.dumps(s, ensure_ascii=False)[:800]}")
    rendered = refused = differ = 0
    for name, st in sorted(stats.items()):
        line = (f"{name}: {st['equal']} rows equal, {st['raise']} raise in both, {st['refused']} refused, "
                f"{st['differ']} differ")
        if name in refusals:
            line += f" -- {refusals[name]}"
        print(line)
        differ += st["differ"]
        if st["differ"] == 0 and st["refused"] == 0 and st["equal"] > 0:
            rendered += 1
        elif st["refused"]:
            refused += 1
    print(f"rendered {rendered} templates exactly, refused {refused} (whole or in part), {differ} rows differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
