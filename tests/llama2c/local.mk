# tests/llama2c: conversion of the llama2.c stories260K model, checked against
# an independent numpy forward pass, transformers and llama2.c's tokenizer.
TESTS += tests/llama2c/convert_stories.sh
EXTRA_DIST += tests/llama2c/convert_stories.sh tests/llama2c/check_llama2c_logits.py \
	tests/llama2c/check_llama2c_tokenizer.py
