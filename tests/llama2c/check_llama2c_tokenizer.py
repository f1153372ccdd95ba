"""check_llama2c_tokenizer.py: the converted tokenizer.json, loaded by Hugging
Face tokenizers, against an independent encoder built from tok512.bin.

The reference is llama2.c's encode(): a dummy-prefix space, one token per
UTF-8 character (bytes +3 for characters not in the vocabulary), then merge
the adjacent pair whose concatenation has the best score, leftmost on ties,
until no pair merges.  That is SentencePiece BPE; tokenizers' BPE with the
converted merges must give the same ids, and decode must give the text back.

usage: check_llama2c_tokenizer.py --tokenizer tok512.bin --converted DIR
"""
import argparse
import struct
import sys


def load_tok(path):
    with open(path, "rb") as f:
        raw = f.read()
    pos, pieces, scores = 4, [], []
    while pos < len(raw):
        score, n = struct.unpack("<fi", raw[pos:pos + 8])
        pieces.append(raw[pos + 8:pos + 8 + n])
        scores.append(score)
        pos += 8 + n
    return pieces, scores


def utf8_chars(b):
    """Splits bytes at UTF-8 character starts, as llama2.c's encode does."""
    out = []
    for byte in b:
        if out and (byte & 0xC0) == 0x80 and len(out[-1]) < 4:
            out[-1] += bytes([byte])
        else:
            out.append(bytes([byte]))
    return out


def encode_llama2c(text, pieces, scores):
    lookup = {p: i for i, p in enumerate(pieces)}
    ids = [lookup[b" "]] if text else []
    for ch in utf8_chars(text.encode("utf-8")):
        if ch in lookup:
            ids.append(lookup[ch])
        else:
            ids.extend(b + 3 for b in ch)  # byte fallback: <0x00> is id 3
    while True:
        best, best_id, best_i = -1e10, -1, -1
        for i in range(len(ids) - 1):
            merged = lookup.get(pieces[ids[i]] + pieces[ids[i + 1]])
            if merged is not None and scores[merged] > best:
                best, best_id, best_i = scores[merged], merged, i
        if best_i < 0:
            return ids
        ids[best_i:best_i + 2] = [best_id]


SENTENCES = [
    "Once upon a time, there was a little girl named Lily.",
    "She loved to play outside in the park with her dog, Max!",
    "\"Can I have the red ball?\" asked Tom. His mom said yes.",
    "The  sun   was hot; they ate 3 ice creams (and 12 cookies).",
    "Héllo wörld, naïve café: ☺ and 日本 fall back to bytes.",
    "line one\nline two\ttabbed",
    "   leading spaces and trailing ones   ",
    "aaaa bbbb lll ooo tttt",
    "Mississippi, Tennessee, balloon, coffee, bookkeeper.",
    "The end.",
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", required=True, help="llama2.c tok*.bin")
    ap.add_argument("--converted", required=True, help="directory with tokenizer.json")
    args = ap.parse_args()
    from tokenizers import Tokenizer

    pieces, scores = load_tok(args.tokenizer)
    hf = Tokenizer.from_file(f"{args.converted}/tokenizer.json")
    n_bad = 0
    for text in SENTENCES:
        want = encode_llama2c(text, pieces, scores)
        got = hf.encode(text, add_special_tokens=False).ids
        with_bos = hf.encode(text).ids
        back = hf.decode(got)
        if got != want or with_bos != [1] + want or back != text:
            n_bad += 1
            print(f"MISMATCH {text!r}\n  llama2.c  {want}\n  tokenizers {got}\n"
                  f"  with BOS {with_bos[:3]}...\n  decoded {back!r}")
    print(f"tokenizer.json vs llama2.c encode: {len(SENTENCES) - n_bad}/{len(SENTENCES)} "
          f"sentences give the same ids and decode back")
    if n_bad:
        sys.exit("FAIL: tokenizer.json does not encode as llama2.c does")


if __name__ == "__main__":
    main()
