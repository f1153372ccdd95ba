"""chat_template_oracle.py: the oracle of tests/chat_template/*.sh --
transformers' own chat-template renderer (render_jinja_template, what
apply_chat_template(tokenize=False) runs) on the rows of data files.

usage: chat_template_oracle.py OUT_DIR --rows ROWS... --templates T...

T: a .jinja file, or a model directory (its tokenizer_config.json's
"chat_template" and special tokens bos/eos/unk/pad, as apply_chat_template
passes them).  ROWS: .jsonl rows, or a .json array, with "messages" or
ShareGPT "conversations" (roles mapped as shardtune maps them: human ->
user, gpt -> assistant).  For every T, ROWS and add_generation_prompt
(0, 1), OUT_DIR/NAME__ROWSNAME__gN.jsonl gets one line per row: the
rendered text as a JSON string, or {"error": "..."} where transformers
raises.  SHARDTUNE_CHAT_TEMPLATE_NOW ("YYYY-MM-DD HH:MM:SS") pins
strftime_now's clock, as it does shardtune's.
"""
import argparse
import datetime as dt
import json
import os

from transformers.utils import chat_template_utils as ctu

SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                  "system": "system"}


def pin_clock():
    pin = os.environ.get("SHARDTUNE_CHAT_TEMPLATE_NOW")
    if not pin:
        return
    fixed = dt.datetime.strptime(pin, "%Y-%m-%d %H:%M:%S")

    class Pinned(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return fixed

    ctu.datetime = Pinned  # strftime_now reads the module's datetime


def read_rows(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if text.lstrip().startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.split("\n") if line.strip()]  # not splitlines(): U+2028 is text


def messages(row):
    if "messages" in row:
        return row["messages"]
    return [{"role": SHAREGPT_ROLES[m["from"]], "content": m["value"]} for m in row["conversations"]]


def load_template(path):
    """(name, template text, special tokens) of a .jinja file or a model directory"""
    specials = {}
    if os.path.isdir(path):
        with open(os.path.join(path, "tokenizer_config.json"), encoding="utf-8") as f:
            cfg = json.load(f)
        for key in ("bos_token", "eos_token", "unk_token", "pad_token"):
            v = cfg.get(key)
            if isinstance(v, dict):
                v = v.get("content")
            if isinstance(v, str):
                specials[key] = v
        return os.path.basename(os.path.normpath(path)), cfg["chat_template"], specials
    with open(path, encoding="utf-8") as f:
        return os.path.basename(path).removesuffix(".jinja"), f.read(), specials


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir")
    ap.add_argument("--rows", nargs="+", required=True)
    ap.add_argument("--templates", nargs="+", required=True)
    args = ap.parse_args()
    pin_clock()
    data = {os.path.basename(r): read_rows(r) for r in args.rows}
    for path in args.templates:
        name, template, specials = load_template(path)
        for rows_name, rows in data.items():
            for gen in (0, 1):
                out_path = os.path.join(args.out_dir, f"{name}__{rows_name}__g{gen}.jsonl")
                with open(out_path, "w", encoding="utf-8") as out:
                    for row in rows:
                        try:
                            rendered, _ = ctu.render_jinja_template(
                                conversations=[messages(row)], chat_template=template,
                                add_generation_prompt=bool(gen), **specials)
                            out.write(json.dumps(rendered[0], ensure_ascii=False) + "\n")
                        except Exception as e:  # the template raised: shardtune must refuse the row too
                            out.write(json.dumps({"error": f"{type(e).__name__}: {e}"}) + "\n")


if __name__ == "__main__":
    main()
