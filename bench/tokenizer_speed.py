"""tokenizer_speed.py: the corpus and the Hugging Face side of tokenizer_speed.sh.

    python tokenizer_speed.py corpus OUT.json MBYTES
    python tokenizer_speed.py hf TOKENIZER_JSON_OR_GPT2_DIR DOCS.json PASSES

corpus: real text (the UltraChat / UltraFeedback / Deita / FastChat samples of
../shared/assets when present, the repository's tiny stories, llama.cpp's test
strings) cut into documents, plus 20% of the varied strings of the tokenizer
tests (CJK, emoji, code, whitespace runs), shuffled and repeated (seeded) up to
MBYTES.  hf: `tokenizers` encoding the same documents one thread
(RAYON_NUM_THREADS=1, TOKENIZERS_PARALLELISM=false, set by the caller), best of
PASSES, printed in the C driver's format.
"""
import glob
import json
import os
import random
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)


def real_texts():
    texts = []
    for path in sorted(glob.glob(os.path.join(TOP, "..", "shared", "assets", "data", "*.json*"))):
        with open(path, encoding="utf-8") as f:
            rows = json.load(f) if path.endswith(".json") else [json.loads(x) for x in f if x.strip()]
        for row in rows:
            for m in row.get("messages", []) + row.get("conversations", []):
                texts.append(m.get("content") or m.get("value") or "")
    with open(os.path.join(TOP, "assets", "data", "tiny_stories.txt"), encoding="utf-8") as f:
        texts += [p for p in f.read().split("\n\n") if p.strip()]
    with open(os.path.join(TOP, "tests", "tokenizer", "data", "ggml-vocab-llama-spm.gguf.inp"),
              encoding="utf-8") as f:
        texts += f.read().split("\n__ggml_vocab_test__\n")
    return [t for t in texts if t]


def corpus(out, mbytes):
    sys.path.insert(0, os.path.join(TOP, "tests", "tokenizer"))
    from hf_agreement import make_strings
    rng = random.Random(7)
    real = real_texts()
    varied = make_strings(2000, 11)
    target = int(float(mbytes) * 1e6)
    docs, size = [], 0
    while size < target:
        d = rng.choice(varied) if rng.random() < 0.2 else rng.choice(real)
        docs.append(d)
        size += len(d.encode("utf-8"))
    with open(out, "w", encoding="utf-8") as f:
        json.dump(docs, f)
    print(f"corpus: {len(docs)} documents, {size / 1e6:.2f} MB "
          f"({len(real)} real texts, {len(varied)} varied strings)")


def hf(path, docs_path, passes):
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    if os.path.isdir(path):  # GPT-2 slow files, set up as shardtune reads them
        vocab, merges = models.BPE.read_file(os.path.join(path, "vocab.json"),
                                             os.path.join(path, "merges.txt"))
        tok = Tokenizer(models.BPE(vocab, merges))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        tok.add_special_tokens([AddedToken("<|endoftext|>", special=True, normalized=False)])
    else:
        tok = Tokenizer.from_file(path)
    with open(docs_path, encoding="utf-8") as f:
        docs = json.load(f)
    n_bytes = sum(len(d.encode("utf-8")) for d in docs)
    best, first, n_tokens = 1e30, 0.0, 0
    for p in range(int(passes)):
        start = time.perf_counter()
        encs = tok.encode_batch(docs, add_special_tokens=True)
        s = time.perf_counter() - start
        first = s if p == 0 else first
        best = min(best, s)
        n_tokens = sum(len(e.ids) for e in encs)
    print(f"bytes {n_bytes} tokens {n_tokens} seconds {best:.4f} MB/s {n_bytes / best / 1e6:.2f} "
          f"first_MB/s {n_bytes / first / 1e6:.2f}")


if __name__ == "__main__":
    {"corpus": corpus, "hf": hf}[sys.argv[1]](*sys.argv[2:])
