"""hf_agreement.py: shardtune's tokenizer against Hugging Face `tokenizers`.

    python hf_agreement.py TOK_BATCH DATA_DIR SCRATCH all
    python hf_agreement.py TOK_BATCH DATA_DIR SCRATCH stories TOKENIZER_JSON

For each tokenizer, the same seeded strings (Unicode, CJK, accents, emoji,
whitespace runs, tabs and newlines, digits, contractions, code, chat markup)
are encoded by `tokenizers.Tokenizer` and by tok_batch (the C library); the
ids must be equal, the decoded texts equal, and encode -> decode must give
back the text wherever `tokenizers` does.  Tokenizers checked ("all"):
  - tinyllama-chat tokenizer.json (SentencePiece-style, byte fallback), with
    and without add_special_tokens, and the same file as written (with its
    U+00A0 defect) on strings without U+00A0;
  - the same with added tokens (normalized ones, single_word, rstrip);
  - the same vocabulary in the Metaspace pre-tokenizer forms (Mistral's
    legacy=false conversion: prepend_scheme first, split false; and the
    older add_prefix_space form that splits at U+2581);
  - GPT-2's vocab.json + merges.txt (ByteLevelBPETokenizer, no prefix space);
  - a Llama-3-style tokenizer.json made here: Split(Llama-3 regex) +
    ByteLevel(use_regex=False), ignore_merges, special tokens, a template
    that adds <|begin_of_text|>, lstrip / rstrip / single_word added tokens;
  - a byte-level one exercising the other Split behaviors and Digits.
"""
import json
import os
import random
import subprocess
import sys

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors

N_STRINGS = 2500
TOK_BATCH = DATA = SCRATCH = None  # set by main() from the command line

LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

WORDS = ("the quick brown fox jumps over lazy dog Hello World hello world tokenizer "
         "fine-tuning LoRA adapters sharded data parallel training Llama mistral qwen "
         "internationalization antidisestablishmentarianism a I x").split()
CONTRACTIONS = ["don't", "I'm", "you're", "we've", "they'll", "she'd", "it's", "IT'S", "We'Ve",
                "'s", "'t", "'re", "'ll", "'d", "'m", "o'clock", "rock'n'roll", "''", "'"]
UNICODE = ["café", "naïve", "Ångström", "façade", "résumé", "jalapeño", "über", "Straße",
           "e\u0301", "n\u0303", "中文", "日本語のテキスト", "한국어", "你好，世界", "東京",
           "龘", "\U00020000", "Привет", "Ελληνικά", "العربية", "עברית", "हिन्दी", "ภาษาไทย",
           "😀", "👍🏽", "👨‍👩‍👧", "🇫🇷", "🤖🤖", "❤️", "✓", "∑∫√", "€£¥", "½", "²³", "Ⅻ",
           "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "\ue000", "\u200b", "\u200d", "\ufeff", "\u00ad", "\u2028", "\x7f",
           "\x01", "\x00", "\x1c"]
SPACES = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n ", "\t\t", "\u00a0", "\u2003",
          "\u3000", "\u0085", "\u180e", "\u205f", " \t\n"]
CODE = ["def f(x):\n    return x**2\n", "for (int i = 0; i < n; i++) {\n\tsum += a[i];\n}",
        '{"a": [1, 2.5, -3e10], "b": null}', "<div class=\"x\">&amp;</div>", "x = y + 1  # note",
        "SELECT * FROM t WHERE id=42;", "https://example.com/path?q=1&r=2", "a_b-c.d/e\\f",
        "$ ls -la ~/.config", "@user #tag", "0x1F 0b1010 1_000_000", "3.14159", "-273.15°C"]
MARKUP = ["<s>", "</s>", "<unk>", "<|im_start|>", "<|im_end|>", "<|im_start|>user\n",
          "<|endoftext|>", "<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>",
          "<|end_header_id|>", "[INST]", "[/INST]", "<<SYS>>", "<|user|>", "<|assistant|>",
          "<mask>", " <mask>", "<", ">", "<|", "|>", "<s", "s>"]
STABLE_BLOCKS = [(0x20, 0x7E), (0xA0, 0x24F), (0x370, 0x52F), (0x590, 0x6FF), (0x900, 0x97F),
                 (0xE00, 0xE7F), (0x1E00, 0x1FFF), (0x2000, 0x2BFF), (0x3000, 0x30FF),
                 (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0xE000, 0xF8FF), (0xFF00, 0xFFEF),
                 (0x1D400, 0x1D7FF), (0x1F300, 0x1F64F), (0x20000, 0x2A6DF), (0xF0000, 0xFFFFD)]
DIGITS = ["0", "7", "42", "123", "1234", "12345678901234567890", "2024-01-31", "1,000", "१२३",
          "٣", "3rd"]


def piece(rng):
    k = rng.random()
    if k < 0.30:
        w = rng.choice(WORDS)
        return w.upper() if rng.random() < 0.1 else w
    if k < 0.40:
        return rng.choice(CONTRACTIONS)
    if k < 0.55:
        return rng.choice(UNICODE)
    if k < 0.67:
        return rng.choice(SPACES)
    if k < 0.74:
        return rng.choice(CODE)
    if k < 0.84:
        return rng.choice(MARKUP)
    if k < 0.92:
        return rng.choice(DIGITS)
    # random code points from blocks stable since Unicode 14 (PCRE2 10.42's
    # tables; tokenizers' Rust and Oniguruma know newer versions, whose new
    # letters and digits would split differently), astral ones included
    out = []
    for _ in range(rng.randint(1, 6)):
        lo, hi = rng.choice(STABLE_BLOCKS)
        out.append(chr(rng.randint(lo, hi)))
    return "".join(out)


def make_strings(n, seed):
    rng = random.Random(seed)
    fixed = ["", " ", "  ", "\n", "\t", "a", " a", "a ", "  leading", "trailing  ",
             "Hello world", " Hello world", "Hello  world", "Hello\n\nworld", "<s>", "</s>",
             "<s>hi</s>", "<s> hi", "hi <s>", "<|im_start|>user\nhi<|im_end|>\n",
             "I'm sure it's the dog's", "1234567", "\u00a0x\u00a0", "🇫🇷👍🏽", "e\u0301e\u0301"]
    out = list(fixed)
    while len(out) < n:
        sep = rng.choice(["", " ", " ", " ", "  ", "\n", "\t"])
        out.append(sep.join(piece(rng) for _ in range(rng.randint(1, 30))))
    return out


def run_c(tok_path, strings, name, add_special):
    src = os.path.join(SCRATCH, name + ".in.json")
    dst = os.path.join(SCRATCH, name + ".out.jsonl")
    with open(src, "w", encoding="utf-8") as f:
        json.dump(strings, f, ensure_ascii=True)
    cmd = [TOK_BATCH, tok_path, src, dst] + (["--add_special_tokens"] if add_special else [])
    subprocess.run(cmd, check=True)
    with open(dst, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def compare(name, hf, tok_path, strings, add_special=False, identity=True):
    rows = run_c(tok_path, strings, name, add_special)
    if len(rows) != len(strings):
        sys.exit(f"FAIL {name}: {len(rows)} results for {len(strings)} strings")
    encs = hf.encode_batch(strings, add_special_tokens=add_special)
    n_identity = n_hf_identity = 0
    for s, enc, row in zip(strings, encs, rows):
        if row["ids"] != enc.ids:
            sys.exit(f"FAIL {name}: {s!r}\n  tokenizers: {enc.ids}\n  shardtune:  {row['ids']}\n"
                     f"  tokens: {enc.tokens}")
        want = hf.decode(enc.ids, skip_special_tokens=False)
        if row["text"] != want:
            sys.exit(f"FAIL {name}: decode of {s!r}\n  tokenizers: {want!r}\n"
                     f"  shardtune:  {row['text']!r}")
        n_hf_identity += want == s
        n_identity += row["text"] == s
    total = sum(len(s.encode("utf-8")) for s in strings)
    print(f"ok {name}: {len(strings)} strings ({total} bytes), ids and decoded text agree; "
          f"encode->decode is the identity on {n_identity} (tokenizers: {n_hf_identity})")
    if identity and n_identity != len(strings):
        sys.exit(f"FAIL {name}: encode->decode is not the identity on "
                 f"{len(strings) - n_identity} strings")


def fixed_tinyllama(src, dst):
    """The tinyllama file with U+00A0 restored where the copy lost it, so that
    tokenizers loads it (it refuses a merge holding a space)."""
    with open(src, encoding="utf-8") as f:
        d = json.load(f)
    m = d["model"]
    vocab = m["vocab"]
    inv = {i: k for k, i in vocab.items()}
    for i in (8655, 17891, 20246, 30081):
        k = inv[i]
        del vocab[k]
        vocab[k.replace(" ", "\u00a0")] = i
    pairs = {18917: ["\u00a0", "\u00a0"], 38142: ["\u00a0\u00a0", "\u00a0\u00a0"],
             42805: ["\u2581", "\u00a0"]}
    m["merges"] = [pairs.get(i, x.split(" ") if isinstance(x, str) else x)
                   for i, x in enumerate(m["merges"])]
    with open(dst, "w", encoding="utf-8") as f:
        json.dump(d, f, ensure_ascii=False)
    return d


def metaspace_variant(d, dst, legacy=False):
    """Mistral-style (transformers' LlamaConverter with legacy=False), or with
    legacy the older Metaspace form (add_prefix_space, splitting at U+2581)."""
    d = json.loads(json.dumps(d))
    if legacy:
        d["normalizer"] = None
        ms = {"type": "Metaspace", "replacement": "\u2581", "add_prefix_space": True}
        d["pre_tokenizer"] = ms
        d["decoder"] = ms
    else:
        d["normalizer"] = {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}
        d["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581",
                              "prepend_scheme": "first", "split": False}
        d["decoder"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first",
                        "split": False}
    with open(dst, "w", encoding="utf-8") as f:
        json.dump(d, f, ensure_ascii=False)


def gpt2_bpe(gpt2_dir):
    vocab, merges = models.BPE.read_file(os.path.join(gpt2_dir, "vocab.json"),
                                         os.path.join(gpt2_dir, "merges.txt"))
    return vocab, merges


def llama3_style(gpt2_dir, dst):
    vocab, merges = gpt2_bpe(gpt2_dir)
    tok = Tokenizer(models.BPE(vocab, merges, ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                "<|end_header_id|>", "<|eot_id|>", "<|im_start|>", "<|im_end|>"]
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    tok.add_tokens([AddedToken("<mask>", lstrip=True, normalized=False, special=False),
                    AddedToken("tokenizer", single_word=True, normalized=False),
                    AddedToken("<|user|>", rstrip=True, normalized=False)])
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                      pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                      special_tokens=[("<|begin_of_text|>", bos)])])
    tok.save(dst)
    return Tokenizer.from_file(dst)


def splits_style(gpt2_dir, dst):
    vocab, merges = gpt2_bpe(gpt2_dir)
    tok = Tokenizer(models.BPE(vocab, merges))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.Split(Regex(r"\s+"), behavior="merged_with_previous"),
        pre_tokenizers.Split(Regex(r"[,.;:]"), behavior="merged_with_next"),
        pre_tokenizers.Split(Regex(r"[!?]"), behavior="contiguous"),
        pre_tokenizers.Split("\n", behavior="removed"),
        pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    tok.save(dst)
    return Tokenizer.from_file(dst)


def main():
    global TOK_BATCH, DATA, SCRATCH
    TOK_BATCH, DATA, SCRATCH, mode = sys.argv[1:5]
    strings = make_strings(N_STRINGS, int(os.environ.get("TOKENIZER_TEST_SEED", "20240531")))
    if mode == "stories":
        path = sys.argv[5]
        hf = Tokenizer.from_file(path)
        # its special tokens decode as themselves, so text holding them (or
        # text right after one, whose leading space the decoder strips)
        # cannot round-trip, nor can U+2581 (it decodes as a space); plain
        # text must
        plain = [s for s in strings[:600]
                 if not any(m in s for m in ("<s>", "</s>", "<unk>", "\u2581"))]
        compare("stories260K", hf, path, plain[:400])
        compare("stories260K-all", hf, path, strings[:400], identity=False)
        compare("stories260K+bos", hf, path, strings[:400], add_special=True, identity=False)
        return
    tl_src = os.path.join(DATA, "tinyllama-chat", "tokenizer.json")
    tl_fixed = os.path.join(SCRATCH, "tinyllama-fixed.json")
    d = fixed_tinyllama(tl_src, tl_fixed)
    hf = Tokenizer.from_file(tl_fixed)
    compare("tinyllama", hf, tl_fixed, strings, identity=False)
    compare("tinyllama-plain", hf, tl_fixed,
            [s for s in strings if not any(m in s for m in ("<s>", "</s>", "<unk>", "\u2581"))])
    compare("tinyllama+bos", hf, tl_fixed, strings, add_special=True, identity=False)
    compare("tinyllama-as-published", hf, tl_src, [s for s in strings if "\u00a0" not in s],
            identity=False)

    # added tokens: normalized ones match as the normalizer writes them
    # ("hello" matches "\u2581hello"), special ones in the raw text
    hf.add_tokens([AddedToken("hello", normalized=True), AddedToken("a b", normalized=True),
                   AddedToken("world", normalized=True, single_word=True),
                   AddedToken("<|user|>", normalized=False, rstrip=True)])
    hf.add_special_tokens([AddedToken("<|im_start|>", special=True, normalized=False),
                           AddedToken("<|im_end|>", special=True, normalized=False)])
    tl_added = os.path.join(SCRATCH, "tinyllama-added.json")
    hf.save(tl_added)
    compare("tinyllama-added-tokens", hf, tl_added, strings, identity=False)

    ms = os.path.join(SCRATCH, "tinyllama-metaspace.json")
    metaspace_variant(d, ms)
    compare("tinyllama-metaspace", Tokenizer.from_file(ms), ms, strings, identity=False)
    metaspace_variant(d, ms, legacy=True)
    compare("tinyllama-metaspace-legacy", Tokenizer.from_file(ms), ms, strings, identity=False)

    gpt2_dir = os.path.join(DATA, "gpt2")
    vocab, merges = gpt2_bpe(gpt2_dir)
    hf = Tokenizer(models.BPE(vocab, merges))
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    hf.decoder = decoders.ByteLevel()
    hf.add_special_tokens([AddedToken("<|endoftext|>", special=True, normalized=False)])
    compare("gpt2-slow-files", hf, gpt2_dir, strings)

    l3 = os.path.join(SCRATCH, "llama3-style.json")
    hf = llama3_style(gpt2_dir, l3)
    # lstrip / rstrip eat the whitespace beside these
    plain = [s for s in strings if "<mask>" not in s and "<|user|>" not in s]
    compare("llama3-style", hf, l3, plain)
    compare("llama3-style-all", hf, l3, strings, identity=False)
    compare("llama3-style+bos", hf, l3, strings, add_special=True, identity=False)

    sp = os.path.join(SCRATCH, "split-behaviors.json")
    compare("split-behaviors", splits_style(gpt2_dir, sp), sp, strings, identity=False)


if __name__ == "__main__":
    main()
