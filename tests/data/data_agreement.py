"""data_agreement.py: datasets as shardtune loads them against what PEFT's
examples/sft (transformers + tokenizers) and TRL's packing make of them.

    python data_agreement.py DATA_DUMP DATA_DIR TOKENIZER_DATA_DIR SCRATCH

- conversations (UltraChat "messages", ShareGPT "conversations" in a JSON
  array) rendered with chatml / zephyr and tokenized: ids equal `tokenizers`
  on transformers' apply_chat_template text; --add_special_tokens puts BOS
  first; rows longer than --max_seq_len are cut;
- --assistant_only_loss: exactly the tokens whose `tokenizers` offsets
  overlap an assistant reply (content + end-of-turn) keep their labels;
- conversations already rendered into a "content" column (what PEFT's
  create_datasets makes) read with --dataset_text_field content give the
  same ids, from a split directory (train.jsonl / test.jsonl, --splits);
- wrapped packing: the documents (+ EOS with --append_concat_token) end to
  end, cut every max_seq_len, the last short block kept (TRL's "wrapped");
- bfd packing: the rows of TRL's _pack_bfd loop (transcribed below), and seg
  numbering the documents of each row.
"""
import json
import os
import subprocess
import sys
from collections import defaultdict, deque

from tokenizers import AddedToken, Tokenizer

import chat_agreement as C

IGNORE = -100


def dump(data_dump, scratch, name, tok, flags, split=0):
    out = os.path.join(scratch, f"data-{name}.jsonl")
    subprocess.run([data_dump, "--tokenizer", tok, "--split", str(split), "--out", out] + flags, check=True)
    return C.read_jsonl(out)


def render_with_spans(fmt, msgs):
    """The template's text built piece by piece, with each assistant reply's
    character span (content + end-of-turn), to be checked against
    transformers' rendering."""
    text, spans = "", []
    for m in msgs:
        if fmt == "chatml":
            text += "<|im_start|>" + m["role"] + "\n"
            end_of_turn = "<|im_end|>"
        else:
            if m["role"] not in ("user", "system", "assistant"):
                continue
            text += "<|" + m["role"] + "|>\n"
            end_of_turn = "</s>"
        start = len(text)
        text += m["content"] + end_of_turn
        if m["role"] == "assistant":
            spans.append((start, len(text)))
        text += "\n"
    return text, spans


def expected_labels(enc, spans):
    labels = []
    for tid, (a, b) in zip(enc.ids, enc.offsets):
        inside = b > a and any(a < e and b > s for s, e in spans)
        labels.append(tid if inside else IGNORE)
    return labels


def trl_bfd(seqs, seq_length):
    """TRL's _pack_bfd (trl/data_utils.py, on_seq_length_overflow="truncate"),
    the same loop on lists: best fit = the least free space that holds the
    sequence, bins with equal space taken first come first served."""
    seqs = [s[:seq_length] for s in seqs if len(s) > 0]
    order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))
    spaces = set()
    space_to_bin = defaultdict(deque)
    bins = []
    for idx in order:
        length = len(seqs[idx])
        fits = [s for s in spaces if s >= length]
        space = min(fits) if fits else seq_length
        if space < seq_length:
            b = space_to_bin[space].popleft()
        else:
            b = {"ids": [], "length": 0}
            bins.append(b)
        b["ids"].append(idx)
        b["length"] += length
        if space < seq_length and not space_to_bin[space]:
            spaces.discard(space)
        space -= length
        space_to_bin[space].append(b)
        if space > 0:
            spaces.add(space)
    rows = []
    for b in bins:
        ids = [t for i in b["ids"] for t in seqs[i]]
        seg = [k for k, i in enumerate(b["ids"]) for _ in seqs[i]]
        rows.append((ids, seg))
    return rows


def main():
    data_dump, data_dir, tok_data, scratch = sys.argv[1:5]
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tokenizer"))
    import hf_agreement as H

    model_dir = os.path.join(scratch, "tinyllama")
    os.makedirs(model_dir, exist_ok=True)
    tl = os.path.join(model_dir, "tokenizer.json")
    H.fixed_tinyllama(os.path.join(tok_data, "tinyllama-chat", "tokenizer.json"), tl)
    import shutil
    shutil.copy(os.path.join(tok_data, "tinyllama-chat", "tokenizer_config.json"), model_dir)
    ultra = os.path.join(data_dir, "ultrachat_200k_sample16.jsonl")
    sharegpt = os.path.join(data_dir, "fastchat_dummy_conversation.json")

    docs = {}
    for fmt in ("chatml", "zephyr"):
        hf = C.peft_tokenizer(model_dir, fmt)
        raw = Tokenizer.from_file(tl)
        for i in sorted(k for k in hf.added_tokens_decoder if k >= 32000):
            raw.add_special_tokens([AddedToken(hf.added_tokens_decoder[i].content, special=True, normalized=False)])
        rows = C.load_rows(ultra)
        texts = []
        for add_special in (False, True):
            flags = ["--dataset_name", ultra, "--chat_template_format", fmt, "--assistant_only_loss", "True",
                     "--max_seq_len", "100000", "--add_special_tokens", str(add_special)]
            got = dump(data_dump, scratch, f"{fmt}-mask", model_dir, flags)
            if len(got) != len(rows):
                C.fail(f"{fmt}: {len(got)} rows of {len(rows)}")
            n_trained = n_tokens = 0
            for i, (row, g) in enumerate(zip(rows, got)):
                msgs = C.messages_of(row)
                text, spans = render_with_spans(fmt, msgs)
                if text != hf.apply_chat_template(msgs, tokenize=False):
                    C.fail(f"{fmt} row {i}: the piecewise rendering is not transformers'")
                enc = raw.encode(text, add_special_tokens=add_special)
                if g["ids"] != enc.ids:
                    C.fail(f"{fmt} row {i} (add_special_tokens={add_special}): ids differ from tokenizers'")
                if add_special and g["ids"][0] != hf.bos_token_id:
                    C.fail(f"{fmt} row {i}: no BOS first with --add_special_tokens")
                if g["labels"] != expected_labels(enc, spans):
                    C.fail(f"{fmt} row {i}: assistant-only labels differ")
                n_trained += sum(x != IGNORE for x in g["labels"])
                n_tokens += len(g["ids"])
                texts.append(text)
            print(f"ok {fmt} ultrachat (add_special_tokens={add_special}): ids equal tokenizers' on the rendered "
                  f"text; --assistant_only_loss trains {n_trained} of {n_tokens} tokens, exactly those "
                  f"overlapping assistant replies")
        docs[fmt] = [raw.encode(t, add_special_tokens=False).ids for t in texts[:len(rows)]]

        # cut to max_seq_len without packing
        got = dump(data_dump, scratch, f"{fmt}-cut", model_dir,
                   ["--dataset_name", ultra, "--chat_template_format", fmt, "--max_seq_len", "64"])
        if [g["ids"] for g in got] != [d[:64] for d in docs[fmt]] or any(g["labels"] is not None for g in got):
            C.fail(f"{fmt}: rows are not cut to their first 64 tokens")
        print(f"ok {fmt}: without packing each row is its first --max_seq_len tokens")

    hf = C.peft_tokenizer(model_dir, "chatml")
    raw = Tokenizer.from_file(tl)
    for t in ["<|im_end|>", "<pad>", "<|im_start|>user", "<|im_start|>assistant", "<|im_start|>system"]:
        raw.add_special_tokens([AddedToken(t, special=True, normalized=False)])

    # ShareGPT in a JSON array
    got = dump(data_dump, scratch, "sharegpt", model_dir,
               ["--dataset_name", sharegpt, "--chat_template_format", "chatml", "--max_seq_len", "2048"])
    conv = C.load_rows(sharegpt)
    if len(got) != len(conv):
        C.fail(f"sharegpt: {len(got)} rows of {len(conv)}")
    for i, (row, g) in enumerate(zip(conv, got)):
        want = raw.encode(hf.apply_chat_template(C.messages_of(row), tokenize=False), add_special_tokens=False).ids
        if g["ids"] != want[:2048]:
            C.fail(f"sharegpt row {i}: ids differ")
    print(f"ok sharegpt: {len(got)} conversations of a JSON array, human/gpt as user/assistant, ids equal")

    # rows already rendered into "content" (create_datasets' column), from a
    # directory of splits; the chat format still sets up the tokens
    split_dir = os.path.join(scratch, "splits")
    os.makedirs(split_dir, exist_ok=True)
    rows = C.load_rows(ultra)
    for name, part in (("train", rows[:12]), ("test", rows[12:])):
        with open(os.path.join(split_dir, name + ".jsonl"), "w", encoding="utf-8") as f:
            for r in part:
                f.write(json.dumps({"content": hf.apply_chat_template(C.messages_of(r), tokenize=False)}) + "\n")
    flags = ["--dataset_name", split_dir, "--splits", "train,test", "--dataset_text_field", "content",
             "--chat_template_format", "chatml", "--max_seq_len", "100000"]
    train = dump(data_dump, scratch, "content-train", model_dir, flags)
    test = dump(data_dump, scratch, "content-test", model_dir, flags, split=1)
    if [g["ids"] for g in train + test] != docs["chatml"]:
        C.fail("the rendered \"content\" column does not give the ids of the conversations")
    print("ok split directory: train.jsonl (12 rows) and test.jsonl (4) of a \"content\" column give the ids "
          "of the conversations rendered in place")

    eos = hf.eos_token_id
    with_bos = [[hf.bos_token_id] + d + [eos] for d in docs["chatml"]]
    for seq in (512, 1000):
        got = dump(data_dump, scratch, f"wrapped-{seq}", model_dir,
                   ["--dataset_name", ultra, "--chat_template_format", "chatml", "--packing", "True",
                    "--append_concat_token", "True", "--add_special_tokens", "True", "--max_seq_len", str(seq)])
        stream = [t for d in with_bos for t in d]
        want = [stream[k:k + seq] for k in range(0, len(stream), seq)]
        if [g["ids"] for g in got] != want or any(g["seg"] is not None for g in got):
            C.fail(f"wrapped packing at {seq} is not the concatenation cut every {seq} tokens")
        print(f"ok wrapped packing at {seq}: {len(got)} rows, all {seq} long but the last ({len(got[-1]['ids'])}), "
              f"BOS ... EOS around each document")

    plain = [d + [eos] for d in docs["chatml"]]
    for seq in (1024, 3000):
        got = dump(data_dump, scratch, f"bfd-{seq}", model_dir,
                   ["--dataset_name", ultra, "--chat_template_format", "chatml", "--packing", "True",
                    "--packing_strategy", "bfd", "--append_concat_token", "True", "--max_seq_len", str(seq)])
        want = trl_bfd(plain, seq)
        if [(g["ids"], g["seg"]) for g in got] != want:
            C.fail(f"bfd packing at {seq} differs from TRL's loop")
        print(f"ok bfd packing at {seq}: {len(plain)} documents in {len(got)} rows as TRL's _pack_bfd places "
              f"them, seg numbering the documents")

    # many short documents: bins really mix them
    short = [raw.encode(hf.apply_chat_template(C.messages_of(r), tokenize=False), add_special_tokens=False).ids
             for r in conv]
    got = dump(data_dump, scratch, "bfd-sharegpt", model_dir,
               ["--dataset_name", sharegpt, "--chat_template_format", "chatml", "--packing", "True",
                "--packing_strategy", "bfd", "--max_seq_len", "256"])
    if [(g["ids"], g["seg"]) for g in got] != trl_bfd(short, 256):
        C.fail("bfd packing of the ShareGPT conversations differs from TRL's loop")
    n_docs = sum(max(g["seg"]) + 1 for g in got)
    print(f"ok bfd packing at 256: {n_docs} ShareGPT documents in {len(got)} rows as TRL's _pack_bfd places them")


if __name__ == "__main__":
    main()
