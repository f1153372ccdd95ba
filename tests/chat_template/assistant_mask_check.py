"""assistant_mask_check.py DATA_DUMP SCRATCH CASE... -- ROWS...: the rows training
makes of conversations in a model's own chat template, against transformers and
tokenizers.

CASE is NAME:TOKENIZER_DIR[:TEMPLATE_FILE] (the file given as --chat_template_path,
else the directory's own templates: a row with "tools" gets "tool_use" where there is one,
as transformers' get_chat_template picks it).  For every case and every rows file, the rows
transformers can render (a template may raise on some) are written out and loaded by
DATA_DUMP (tests/data/data_dump: what `shardtune train` makes of them) with
--assistant_only_loss True, then checked row by row:

  - the token ids equal the fast tokenizer's (the `tokenizers` library) encoding of
    transformers' apply_chat_template(tokenize=False) text, without special tokens
    (apply_chat_template(tokenize=True) adds none), and equal
    apply_chat_template(tokenize=True)'s own ids;
  - the trained tokens (labels != -100) are, for a template with a {% generation %}
    block, exactly transformers' return_assistant_tokens_mask; without one, the tokens
    whose offsets overlap an assistant reply found in the rendered text: each
    non-empty assistant content in order, as it is or else stripped, plus the
    eos_token right after it (the rule doc/design.md gives, written here again from
    that text).

A summary line per case; exit 1 on the first difference, with the row and tokens.
SHARDTUNE_CHAT_TEMPLATE_NOW pins strftime_now here as in shardtune.
"""
import json
import os
import re
import subprocess
import sys

from tokenizers import Tokenizer
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from chat_template_oracle import SHAREGPT_ROLES, pin_clock, read_rows


def messages(row):
    if "messages" in row:
        return row["messages"]
    return [{"role": SHAREGPT_ROLES[m["from"]], "content": m["value"]} for m in row["conversations"]]


def hf_tokenizer(tok_dir):
    """transformers' tokenizer over exactly the directory's tokenizer.json (the
    `tokenizers` library's pipeline as the file gives it), with its special tokens and
    chat template.  (transformers 5's AutoTokenizer rebuilds a LlamaTokenizer from the
    vocabulary instead, with a Metaspace pre-tokenizer when tokenizer_config.json says
    legacy: false, and then differs from the file after special tokens; see
    doc/design.md, "Chat templates".)  GPT-2's slow files: AutoTokenizer builds them."""
    path = os.path.join(tok_dir, "tokenizer.json")
    if not os.path.exists(path):
        return AutoTokenizer.from_pretrained(tok_dir)
    with open(os.path.join(tok_dir, "tokenizer_config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    specials = {}
    for key in ("bos_token", "eos_token", "unk_token", "pad_token"):
        v = cfg.get(key)
        v = v.get("content") if isinstance(v, dict) else v
        if isinstance(v, str):
            specials[key] = v
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_file(path), **specials)
    # the templates as transformers' from_pretrained gathers them: files first, by name
    files = {"default": os.path.join(tok_dir, "chat_template.jinja"),
             "tool_use": os.path.join(tok_dir, "additional_chat_templates", "tool_use.jinja")}
    templates = {name: open(f, encoding="utf-8").read() for name, f in files.items() if os.path.exists(f)}
    if not templates:
        t = cfg.get("chat_template")
        templates = {e["name"]: e["template"] for e in t} if isinstance(t, list) else {"default": t}
    tok.chat_template = templates["default"] if list(templates) == ["default"] else templates
    return tok


def content_spans(text, msgs, eos):
    """[start, end) character spans of the assistant replies in text"""
    spans, at = [], 0
    for m in msgs:
        c = m.get("content")
        if m.get("role") != "assistant" or not isinstance(c, str):
            continue
        pos = text.find(c, at) if c else -1
        if pos < 0:
            c = c.strip()
            if not c:
                continue
            pos = text.find(c, at)
        if pos < 0:
            raise SystemExit(f"assistant reply not in the text: {c[:60]!r}")
        end = pos + len(c)
        if eos and text.startswith(eos, end):
            end += len(eos)
        spans.append((pos, end))
        at = end
    return spans


def overlap_mask(offsets, spans):
    return [int(b > a and any(s < b and a < e for s, e in spans)) for a, b in offsets]


def check_case(data_dump, scratch, name, tok_dir, template_file, rows_files):
    tok = hf_tokenizer(tok_dir)
    template = open(template_file, encoding="utf-8").read() if template_file else None
    checked = trained = n_marked = 0
    for rows_path in rows_files:
        kept = []
        for row in read_rows(rows_path):
            try:
                tok.apply_chat_template(messages(row), tools=row.get("tools"), chat_template=template,
                                        tokenize=False)
                kept.append(row)
            except Exception:  # the template raises on this row: shardtune refuses it (chat_template_refusals)
                pass
        if not kept:
            continue
        base = os.path.join(scratch, f"{name}__{os.path.basename(rows_path)}")
        with open(base + ".rows.jsonl", "w", encoding="utf-8") as f:
            for row in kept:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        cmd = [data_dump, "--tokenizer", tok_dir, "--out", base + ".ours.jsonl", "--dataset_name",
               base + ".rows.jsonl", "--assistant_only_loss", "True", "--max_seq_len", "1000000"]
        if template_file:
            cmd += ["--chat_template_path", template_file]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"{name} on {rows_path}: data_dump failed: {r.stderr.strip()}")
        ours = [json.loads(line) for line in open(base + ".ours.jsonl")]
        assert len(ours) == len(kept), (len(ours), len(kept))
        for k, (row, got) in enumerate(zip(kept, ours)):
            msgs = messages(row)
            # the template transformers picks for this row ("tool_use" when it has tools)
            marked = re.search(r"\{%-?\s*generation\s*-?%\}",
                               template or tok.get_chat_template(None, row.get("tools"))) is not None
            text = tok.apply_chat_template(msgs, tools=row.get("tools"), chat_template=template, tokenize=False)
            enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
            direct = tok.apply_chat_template(msgs, tools=row.get("tools"), chat_template=template, tokenize=True,
                                             return_dict=True, return_assistant_tokens_mask=marked)
            where = f"{name} on {os.path.basename(rows_path)} row {k}"
            for what, ids in (("shardtune's", got["ids"]), ("apply_chat_template(tokenize=True)'s", direct["input_ids"])):
                if ids != enc["input_ids"]:
                    i = next((i for i, (a, b) in enumerate(zip(ids, enc["input_ids"])) if a != b),
                             min(len(ids), len(enc["input_ids"])))
                    raise SystemExit(f"{where}: {what} token ids differ from tokenizers' at token {i}: "
                                     f"{ids[i:i + 5]} vs {enc['input_ids'][i:i + 5]} "
                                     f"({tok.convert_ids_to_tokens(enc['input_ids'][i:i + 5])})")
            if marked:
                want = list(direct["assistant_masks"])
            else:
                want = overlap_mask(enc["offset_mapping"], content_spans(text, msgs, tok.eos_token))
            labels = got["labels"] if got["labels"] is not None else got["ids"]
            mine = [int(x != -100) for x in labels]
            if mine != want:
                i = next(i for i, (a, b) in enumerate(zip(mine, want)) if a != b)
                pieces = tok.convert_ids_to_tokens(enc["input_ids"][max(0, i - 3):i + 4])
                raise SystemExit(f"{where}: token {i} trained={mine[i]}, expected {want[i]} (around: {pieces})")
            assert all(x == -100 or x == t for x, t in zip(labels, got["ids"]))
            checked += 1
            n_marked += marked
            trained += sum(want)
    if checked == 0 or trained == 0:
        raise SystemExit(f"{name}: nothing checked ({checked} rows, {trained} trained tokens)")
    print(f"{name}: {checked} rows ({n_marked} with {{% generation %}}), {trained} trained tokens equal")


def main():
    data_dump, scratch = sys.argv[1:3]
    sep = sys.argv.index("--")
    cases, rows_files = sys.argv[3:sep], sys.argv[sep + 1:]
    pin_clock()
    for case in cases:
        name, tok_dir, *template = case.split(":")
        check_case(data_dump, scratch, name, tok_dir, template[0] if template else None, rows_files)


if __name__ == "__main__":
    main()
