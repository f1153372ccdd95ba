/* convert_llama2c.h: a llama2.c checkpoint + tokenizer -> Hugging Face model dir. */
#ifndef SHARDTUNE_CONVERT_LLAMA2C_H
#define SHARDTUNE_CONVERT_LLAMA2C_H

#include "log.h"

/* Writes OUT_DIR/{config.json, model.safetensors, tokenizer.json,
 * tokenizer_config.json}.  llama2.c rotates adjacent pairs in RoPE where
 * Hugging Face rotates halves, so the rows of wq and wk are permuted.
 * Returns 0, or -1 with e naming the file and what is wrong. */
int convert_llama2c(const char *checkpoint_path, const char *tokenizer_path,
                    const char *out_dir, errbuf *e);

#endif
