"""chat_agreement.py: shardtune's chat templates and token offsets against
transformers and tokenizers.

    python chat_agreement.py CHAT_DUMP DATA_DIR TOKENIZER_DATA_DIR SCRATCH

1. Rendering: for every UltraChat row (tests/data/ultrachat_200k_sample16.jsonl)
   and the first 50 ShareGPT conversations (fastchat_dummy_conversation.json,
   human -> user, gpt -> assistant), with chatml and zephyr, shardtune's text
   equals transformers' apply_chat_template(tokenize=False) with the template
   PEFT's examples/sft/utils.py sets, with and without the generation
   prompt, character for character.
2. Special tokens: after chat_setup_tokenizer the tokenizer has the ids that
   AutoTokenizer.from_pretrained(pad_token=, bos_token=, eos_token=,
   additional_special_tokens=...) gives PEFT's script, each a single token.
3. Ids: the rendered texts encode to the ids of `tokenizers` (the same
   tokenizer.json with the same special tokens added).
4. Assistant spans: each is an assistant message's content + end-of-turn.
5. Offsets: tokenizer_encode_offsets gives the ids and (in bytes) the
   offsets `tokenizers` gives, on varied strings and the chat texts, for
   SentencePiece-style, Metaspace, byte-level (GPT-2, Llama-3-style) and
   Split tokenizers, with added tokens and with BOS.
"""
import json
import os
import shutil
import subprocess
import sys

from tokenizers import AddedToken, Tokenizer
from transformers import AutoTokenizer

# PEFT examples/sft/utils.py, verbatim
DEFAULT_CHATML_CHAT_TEMPLATE = "{% for message in messages %}\n{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% if loop.last and add_generation_prompt %}{{'<|im_start|>assistant\n' }}{% endif %}{% endfor %}"
DEFAULT_ZEPHYR_CHAT_TEMPLATE = "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}"
# ChatmlSpecialTokens / ZephyrSpecialTokens: user, assistant, system, eos, bos, pad
SPECIALS = {
    "chatml": ["<|im_start|>user", "<|im_start|>assistant", "<|im_start|>system", "<|im_end|>", "<s>", "<pad>"],
    "zephyr": ["<|user|>", "<|assistant|>", "<|system|>", "</s>", "<s>", "<pad>"],
}
TEMPLATES = {"chatml": DEFAULT_CHATML_CHAT_TEMPLATE, "zephyr": DEFAULT_ZEPHYR_CHAT_TEMPLATE}
SHAREGPT_ROLES = {"human": "user", "gpt": "assistant", "system": "system"}


def load_rows(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if text.lstrip().startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def messages_of(row):
    if "messages" in row:
        return [{"role": m["role"], "content": m["content"]} for m in row["messages"]]
    return [{"role": SHAREGPT_ROLES[m["from"]], "content": m["value"]} for m in row["conversations"]]


def peft_tokenizer(model_dir, fmt):
    s = SPECIALS[fmt]
    tok = AutoTokenizer.from_pretrained(model_dir, pad_token=s[5], bos_token=s[4], eos_token=s[3],
                                        additional_special_tokens=s)
    tok.chat_template = TEMPLATES[fmt]
    return tok


def fail(msg):
    sys.exit("FAIL " + msg)


def run(cmd):
    subprocess.run(cmd, check=True)


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def byte_offsets(s, offsets):
    """tokenizers' offsets count characters; shardtune's count bytes."""
    at = [0]
    for ch in s:
        at.append(at[-1] + len(ch.encode("utf-8")))
    return [[at[a], at[b]] for a, b in offsets]


def check_render(chat_dump, data_dir, model_dir, scratch, tokenizer_json):
    sources = [("ultrachat", os.path.join(data_dir, "ultrachat_200k_sample16.jsonl"), 10 ** 6),
               ("sharegpt", os.path.join(data_dir, "fastchat_dummy_conversation.json"), 50)]
    texts = []
    for fmt in ("chatml", "zephyr"):
        hf = peft_tokenizer(model_dir, fmt)
        # the same tokenizer.json through `tokenizers`, the new tokens added
        # one by one in the order of transformers' ids
        raw = Tokenizer.from_file(tokenizer_json)
        base = raw.get_vocab_size(with_added_tokens=True)
        for i in sorted(k for k in hf.added_tokens_decoder if k >= base):
            raw.add_special_tokens([AddedToken(hf.added_tokens_decoder[i].content, special=True,
                                               normalized=False)])
            if raw.token_to_id(hf.added_tokens_decoder[i].content) != i:
                fail(f"{fmt}: cannot rebuild the added token {i} in tokenizers")
        for name, path, limit in sources:
            out = os.path.join(scratch, f"render-{fmt}-{name}.jsonl")
            run([chat_dump, "render", fmt, model_dir, path, str(limit), out])
            head, *rows = read_jsonl(out)
            if head["vocab_size"] != len(hf):
                fail(f"{fmt}: vocabulary {head['vocab_size']}, transformers {len(hf)}")
            for t in SPECIALS[fmt]:
                if head["tokens"][t] != hf.convert_tokens_to_ids(t):
                    fail(f"{fmt}: {t} is {head['tokens'][t]}, transformers {hf.convert_tokens_to_ids(t)}")
                if len(raw.encode(t, add_special_tokens=False).ids) != 1:
                    fail(f"{fmt}: {t} is not a single token")
            for key, want in (("bos", hf.bos_token_id), ("eos", hf.eos_token_id), ("pad", hf.pad_token_id)):
                if head[key] != want:
                    fail(f"{fmt}: {key} id {head[key]}, transformers {want}")
            data = load_rows(path)[:limit]
            if len(rows) != len(data):
                fail(f"{fmt} {name}: {len(rows)} rows rendered of {len(data)}")
            eos = SPECIALS[fmt][3]
            for i, (row, got) in enumerate(zip(data, rows)):
                msgs = messages_of(row)
                want = hf.apply_chat_template(msgs, tokenize=False)
                if got["text"] != want:
                    fail(f"{fmt} {name} row {i}: rendering differs\n  transformers: {want[:300]!r}\n"
                         f"  shardtune:    {got['text'][:300]!r}")
                want_gen = hf.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
                if got["text_gen"] != want_gen:
                    fail(f"{fmt} {name} row {i}: rendering with the generation prompt differs")
                ids = raw.encode(want, add_special_tokens=False).ids
                if got["ids"] != ids:
                    k = next(k for k, (a, b) in enumerate(zip(got["ids"], ids)) if a != b)
                    fail(f"{fmt} {name} row {i}: ids differ at {k}: {got['ids'][k:k+8]} vs {ids[k:k+8]}")
                b = want.encode("utf-8")
                replies = [m["content"] + eos for m in msgs if m["role"] == "assistant"]
                spans = [b[s:e].decode("utf-8") for s, e in got["spans"]]
                if spans != replies:
                    fail(f"{fmt} {name} row {i}: assistant spans {spans[:1]!r}... are not the replies")
                texts.append(want)
            ids_said = ", ".join(f"{t}={head['tokens'][t]}" for t in SPECIALS[fmt][:4])
            print(f"ok {fmt} {name}: {len(rows)} conversations render as transformers renders them "
                  f"(with and without the generation prompt), ids equal tokenizers', "
                  f"special ids equal PEFT's ({ids_said})")
    return texts


def check_offsets(chat_dump, name, hf, tok_path, strings, scratch, extra=()):
    src = os.path.join(scratch, f"offsets-{name}.json")
    dst = os.path.join(scratch, f"offsets-{name}.jsonl")
    with open(src, "w", encoding="utf-8") as f:
        json.dump(strings, f, ensure_ascii=True)
    add_special = "--add_special_tokens" in extra
    run([chat_dump, "offsets", tok_path, src, dst] + list(extra))
    rows = read_jsonl(dst)
    encs = hf.encode_batch(strings, add_special_tokens=add_special)
    for s, enc, row in zip(strings, encs, rows):
        if row["ids"] != enc.ids:
            fail(f"offsets {name}: ids of {s[:80]!r} differ")
        want = byte_offsets(s, enc.offsets)
        if row["offsets"] != want:
            k = next(k for k, (a, b) in enumerate(zip(row["offsets"], want)) if a != b)
            fail(f"offsets {name}: {s[:80]!r}: token {k} ({enc.tokens[k]!r}) spans {row['offsets'][k]}, "
                 f"tokenizers {want[k]}")
    print(f"ok offsets {name}: {len(strings)} strings, ids and byte offsets equal tokenizers'")


def main():
    chat_dump, data_dir, tok_data, scratch = sys.argv[1:5]
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tokenizer"))
    import hf_agreement as H  # the tokenizer tests' strings and tokenizer variants
    H.SCRATCH = scratch

    # the tinyllama tokenizer as a model directory, U+00A0 restored (see
    # tests/tokenizer/data/README) so that `tokenizers` loads it
    model_dir = os.path.join(scratch, "tinyllama")
    os.makedirs(model_dir, exist_ok=True)
    tl = os.path.join(model_dir, "tokenizer.json")
    d = H.fixed_tinyllama(os.path.join(tok_data, "tinyllama-chat", "tokenizer.json"), tl)
    shutil.copy(os.path.join(tok_data, "tinyllama-chat", "tokenizer_config.json"), model_dir)

    texts = check_render(chat_dump, data_dir, model_dir, scratch, tl)

    strings = H.make_strings(600, 20240601) + texts[:40]
    hf = Tokenizer.from_file(tl)
    check_offsets(chat_dump, "tinyllama", hf, tl, strings, scratch)
    check_offsets(chat_dump, "tinyllama+bos", hf, tl, strings, scratch, ["--add_special_tokens"])
    for t in ["<|im_end|>", "<pad>"] + SPECIALS["chatml"][:3]:  # transformers' order (eos, pad, the list)
        hf.add_special_tokens([AddedToken(t, special=True, normalized=False)])
    check_offsets(chat_dump, "tinyllama+chatml", hf, model_dir, strings, scratch, ["--chat", "chatml"])
    hf = Tokenizer.from_file(tl)
    hf.add_tokens([AddedToken("hello", normalized=True), AddedToken("world", normalized=True, single_word=True),
                   AddedToken("<|user|>", normalized=False, rstrip=True)])
    hf.add_special_tokens([AddedToken("<|im_start|>", special=True, normalized=False)])
    added = os.path.join(scratch, "tinyllama-added.json")
    hf.save(added)
    check_offsets(chat_dump, "tinyllama-added-tokens", hf, added, strings, scratch)
    ms = os.path.join(scratch, "tinyllama-metaspace.json")
    H.metaspace_variant(d, ms)
    check_offsets(chat_dump, "tinyllama-metaspace", Tokenizer.from_file(ms), ms, strings, scratch)
    H.metaspace_variant(d, ms, legacy=True)
    check_offsets(chat_dump, "tinyllama-metaspace-legacy", Tokenizer.from_file(ms), ms, strings, scratch)

    gpt2_dir = os.path.join(tok_data, "gpt2")
    from tokenizers import decoders, models, pre_tokenizers
    vocab, merges = H.gpt2_bpe(gpt2_dir)
    hf = Tokenizer(models.BPE(vocab, merges))
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    hf.decoder = decoders.ByteLevel()
    hf.add_special_tokens([AddedToken("<|endoftext|>", special=True, normalized=False)])
    check_offsets(chat_dump, "gpt2", hf, gpt2_dir, strings, scratch)
    l3 = os.path.join(scratch, "llama3-style.json")
    hf = H.llama3_style(gpt2_dir, l3)
    check_offsets(chat_dump, "llama3-style+bos", hf, l3, strings, scratch, ["--add_special_tokens"])
    sp = os.path.join(scratch, "split-behaviors.json")
    check_offsets(chat_dump, "split-behaviors", H.splits_style(gpt2_dir, sp), sp, strings, scratch)


if __name__ == "__main__":
    main()
