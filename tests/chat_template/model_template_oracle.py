"""model_template_oracle.py: the oracle of train_model_template.sh.

  model_template_oracle.py make MODEL_DIR TOKENIZER_DIR
      a tiny random Llama (transformers, seeded) with TinyLlama's vocabulary of 32000,
      saved with TOKENIZER_DIR's tokenizer.json and tokenizer_config.json (TinyLlama's
      chat template) beside it: a Hub chat model in miniature.
  model_template_oracle.py check SCRATCH MAX_SEQ_LEN
      SCRATCH/model, SCRATCH/chat/{train,test}.jsonl, SCRATCH/out (shardtune train's
      run: step 1's loss over one micro-batch holding every training row),
      SCRATCH/eval.json (shardtune eval of SCRATCH/out on the test split with
      --chat_template_path SCRATCH/smollm3.jinja --assistant_only_loss True),
      SCRATCH/generate.err (shardtune generate --chat, greedy).  Each is recomputed
      here from transformers' rendering (apply_chat_template) and tokenization (over
      the same tokenizer.json), transformers' assistant mask, and the model in
      transformers + peft; relative differences of at most 1e-5 pass.

The loss at step 1 is the base model's (LoRA's B starts at zero), over the rows as
TRL's SFTTrainer tokenizes a conversation: apply_chat_template(tokenize=True), no
special tokens added, cut to MAX_SEQ_LEN, labels = ids.
"""
import json
import os
import re
import sys

import torch
from tokenizers import Tokenizer
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from chat_template_oracle import pin_clock
from peft_eval_losses import eval_loss
from reference_common import load_peft_model


def make(model_dir, tok_dir):
    torch.manual_seed(1234)
    cfg = LlamaConfig(vocab_size=32000, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                      bos_token_id=1, eos_token_id=2, pad_token_id=2, tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():  # logits spread enough that greedy decoding is not a coin toss
        model.lm_head.weight.mul_(40.0)
    model.save_pretrained(model_dir)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        with open(os.path.join(tok_dir, name), "rb") as src, open(os.path.join(model_dir, name), "wb") as dst:
            dst.write(src.read())


def tokenizer(model_dir, template=None):
    """transformers' tokenizer over the directory's tokenizer.json as it is (see
    assistant_mask_check.py), with its special tokens and chat template"""
    with open(os.path.join(model_dir, "tokenizer_config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json")),
                                  bos_token=cfg["bos_token"], eos_token=cfg["eos_token"],
                                  unk_token=cfg["unk_token"], pad_token=cfg["pad_token"])
    tok.chat_template = template or cfg["chat_template"]
    return tok


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def close(what, ours, ref, tol=1e-5):
    rel = abs(ours - ref) / abs(ref)
    print(f"{what}: shardtune {ours:.8f}  transformers {ref:.8f}  rel {rel:.1e}")
    if not rel <= tol:
        raise SystemExit(f"FAIL: {what} differs")


def check(scratch, max_seq_len):
    pin_clock()
    model_dir = os.path.join(scratch, "model")
    tok = tokenizer(model_dir)

    # the adapter directory carries the template trained with
    with open(os.path.join(scratch, "out", "tokenizer_config.json"), encoding="utf-8") as f:
        saved = json.load(f).get("chat_template")
    if saved != tok.chat_template:
        raise SystemExit("FAIL: the adapter's tokenizer_config.json lacks the model's chat template")

    # step 1: every training row, rendered and tokenized as TRL does
    train = read_jsonl(os.path.join(scratch, "chat", "train.jsonl"))
    rows = []
    for row in train:
        ids = tok.apply_chat_template(row["messages"], tokenize=True, return_dict=True)["input_ids"][:max_seq_len]
        rows.append((ids, ids))
    base = LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager").eval()
    step1 = next(m for m in read_jsonl(os.path.join(scratch, "out", "metrics.jsonl")) if m.get("step") == 1)
    close("step 1 loss (TinyLlama's template, all tokens)", step1["loss"], eval_loss(base, rows))

    # eval: SmolLM3's template from a file, loss on its {% generation %} tokens only
    smol = tokenizer(model_dir, open(os.path.join(scratch, "smollm3.jinja"), encoding="utf-8").read())
    rows = []
    for row in read_jsonl(os.path.join(scratch, "chat", "test.jsonl")):
        out = smol.apply_chat_template(row["messages"], tokenize=True, return_dict=True,
                                       return_assistant_tokens_mask=True)
        ids, mask = out["input_ids"][:max_seq_len], out["assistant_masks"][:max_seq_len]
        rows.append((ids, [t if m else -100 for t, m in zip(ids, mask)]))
    model = load_peft_model(model_dir, os.path.join(scratch, "out"), trainable=False)
    with open(os.path.join(scratch, "eval.json"), encoding="utf-8") as f:
        ours = json.load(f)["eval_loss"]
    close("eval loss (SmolLM3's template, assistant tokens only)", ours, eval_loss(model, rows))

    # generate --chat: the prompt as a user turn with the generation prompt, greedy
    prompt = tok.apply_chat_template([{"role": "user", "content": "Tell me a story."}], tokenize=True,
                                     add_generation_prompt=True, return_dict=True)["input_ids"]
    with torch.no_grad():
        out = model.generate(input_ids=torch.tensor([prompt]), max_new_tokens=6, do_sample=False,
                             eos_token_id=2, pad_token_id=2)[0, len(prompt):].tolist()
    with open(os.path.join(scratch, "generate.err"), encoding="utf-8") as f:
        m = re.search(r"generated \d+ tokens:([ 0-9]*)", f.read())
    ours = [int(x) for x in m.group(1).split()] if m else None
    print(f"generate --chat: shardtune {ours}  transformers {out}")
    if ours != out:
        raise SystemExit("FAIL: generate --chat differs from transformers' greedy generation")


def main():
    if sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3])
    else:
        check(sys.argv[2], int(sys.argv[3]))


if __name__ == "__main__":
    main()
