# tests/chat_template: models' own chat templates (Jinja) rendered by
# src/jinja*.c, checked character for character against transformers'
# apply_chat_template, and the refusals and limits of the renderer.
libshardtune_a_SOURCES += src/jinja_lex.c src/jinja_parse.c src/jinja_value.c src/jinja_builtins.c src/jinja_eval.c \
	src/chat_template_cmd.c
noinst_HEADERS += src/jinja.h src/jinja_internal.h src/chat_template_cmd.h

# Shell tests: every template against transformers' renderer; the refusals
# and limits.
TESTS += tests/chat_template/chat_template_agreement.sh tests/chat_template/chat_template_refusals.sh
EXTRA_DIST += tests/chat_template/chat_template_agreement.sh tests/chat_template/chat_template_refusals.sh \
	tests/chat_template/chat_template_oracle.py tests/chat_template/compare_rendered.py \
	tests/chat_template/conversations.jsonl tests/chat_template/features.jinja-list \
	tests/chat_template/unsupported.tsv tests/chat_template/README tests/chat_template/LICENSE.onnxruntime-extensions \
	tests/chat_template/templates/phi-4.jinja tests/chat_template/templates/phi-4-base.jinja \
	tests/chat_template/templates/phi-4-mini-reasoning.jinja tests/chat_template/templates/qwen2.5.jinja \
	tests/chat_template/templates/smollm3.jinja

# Training's rows from a model's own template: token ids as `tokenizers`,
# --assistant_only_loss as transformers' return_assistant_tokens_mask
# ({% generation %}) or the assistant replies' spans.
TESTS += tests/chat_template/assistant_mask.sh
EXTRA_DIST += tests/chat_template/assistant_mask.sh tests/chat_template/assistant_mask_check.py \
	tests/chat_template/generation_zephyr.jinja

# A chat model's own template end to end: train, eval with
# --chat_template_path and --assistant_only_loss, generate --chat, against
# transformers + peft; the refusals.
TESTS += tests/chat_template/train_model_template.sh
EXTRA_DIST += tests/chat_template/train_model_template.sh tests/chat_template/model_template_oracle.py
