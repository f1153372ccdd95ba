"""make_tiny_stories_ids.py: pre-tokenizes tiny_stories.txt for the main job.

Each paragraph (blank-line separated) becomes one row {"input_ids": [...]}:
<s> + the paragraph's tokens + </s>, with the tokenizer.json that
`shardtune convert llama2c` writes for stories260K (tok512).  Decoding every
row must give the paragraph back, which also checks that tokenizer.json.

usage: python make_tiny_stories_ids.py --tokenizer CONVERTED_DIR/tokenizer.json
           [--text tiny_stories.txt] [--out tiny_stories_ids.jsonl]
"""
import argparse
import json
import os
import sys

from tokenizers import Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
BOS, EOS = 1, 2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--text", default=os.path.join(HERE, "tiny_stories.txt"))
    ap.add_argument("--out", default=os.path.join(HERE, "tiny_stories_ids.jsonl"))
    args = ap.parse_args()

    tok = Tokenizer.from_file(args.tokenizer)
    with open(args.text, encoding="utf-8") as f:
        paragraphs = [p.strip() for p in f.read().split("\n\n") if p.strip()]
    rows, n_tokens, n_bytefallback = [], 0, 0
    for p in paragraphs:
        ids = tok.encode(p).ids + [EOS]  # the post-processor adds <s>
        if ids[0] != BOS:
            sys.exit(f"{args.tokenizer}: encode did not add <s> (id {BOS})")
        back = tok.decode(ids, skip_special_tokens=True)
        if back != p:
            sys.exit(f"{args.tokenizer}: decode does not give the text back:\n  {p!r}\n  {back!r}")
        n_tokens += len(ids)
        n_bytefallback += sum(3 <= i <= 258 for i in ids)
        rows.append(ids)
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        for ids in rows:
            f.write(json.dumps({"input_ids": ids}) + "\n")
    os.replace(tmp, args.out)
    print(f"{args.out}: {len(rows)} rows, {n_tokens} tokens "
          f"({min(map(len, rows))}..{max(map(len, rows))} per row, "
          f"{len(''.join(paragraphs)) / n_tokens:.2f} chars/token, {n_bytefallback} byte-fallback)")


if __name__ == "__main__":
    main()
