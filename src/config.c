/* config.c: one table of flags; each knows its type, default and which
 * commands take it, so parsing, checking and --help share one source. */
#include "config.h"
#include "suggest.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "report_to.h"

/* F_GROUP: a heading of --help and the man page; the flags after it (to the
 * next heading) belong to it.  It takes no command, so parsing passes over it. */
typedef enum { F_INT, F_DOUBLE, F_BOOL, F_STRING, F_GROUP } flag_type;

typedef struct flag_def {
    const char *name;
    flag_type type;
    size_t offset;
    const char *default_value; /* NULL: no default (string stays NULL) */
    unsigned commands;
    const char *help;
} flag_def;

#define OFF(f) offsetof(run_config, f)
#define GROUP(title) {title, F_GROUP, 0, NULL, 0, NULL}
#define TRAIN_EVAL (CMD_TRAIN | CMD_EVAL | CMD_DUMP | CMD_PLAN)
#define MODEL_CMDS (TRAIN_EVAL | CMD_GENERATE | CMD_MERGE)
#define TRAIN (CMD_TRAIN | CMD_PLAN)

static const flag_def flags[] = {
    GROUP("Model"),
    {"model_name_or_path", F_STRING, OFF(model_name_or_path), NULL, MODEL_CMDS, "Hugging Face model directory"},
    {"adapter", F_STRING, OFF(adapter), NULL, MODEL_CMDS, "PEFT adapter directory to start from / evaluate"},
    {"model", F_STRING, OFF(model_name_or_path), NULL, CMD_DUMP, "alias of --model_name_or_path"},
    {"torch_dtype", F_STRING, OFF(torch_dtype), NULL, CMD_PLAN, "storage of the base weights: float32, bfloat16, float16 (default: config.json's)"},
    GROUP("Data"),
    {"dataset_name", F_STRING, OFF(dataset_name), NULL, TRAIN_EVAL, ".jsonl / .json file, or a directory of <split>.jsonl (see --splits)"},
    {"data", F_STRING, OFF(dataset_name), NULL, CMD_DUMP, "alias of --dataset_name"},
    {"splits", F_STRING, OFF(splits), "train,test", TRAIN_EVAL, "splits of a dataset directory: trained on, evaluated"},
    {"max_seq_len", F_INT, OFF(max_seq_len), "512", TRAIN_EVAL, "sequences are truncated to this length"},
    {"max_length", F_INT, OFF(max_seq_len), NULL, TRAIN_EVAL, "alias of --max_seq_len (newer train.py)"},
    {"dataset_text_field", F_STRING, OFF(dataset_text_field), "text", TRAIN_EVAL, "the text column of the dataset (PEFT's chat runs: content)"},
    {"chat_template_format", F_STRING, OFF(chat_template_format), "none", TRAIN_EVAL, "chatml, zephyr: render messages/conversations with PEFT's template; none: with the model's own (chat_template.jinja or tokenizer_config.json's chat_template)"},
    {"chat_template_path", F_STRING, OFF(chat_template_path), NULL, TRAIN_EVAL | CMD_GENERATE, "a Jinja chat template file, used instead of the model's own"},
    {"packing", F_BOOL, OFF(packing), "False", TRAIN_EVAL, "pack documents into rows of max_seq_len"},
    {"packing_strategy", F_STRING, OFF(packing_strategy), "wrapped", TRAIN_EVAL, "wrapped (concatenate and cut) or bfd (best fit, documents kept whole)"},
    {"append_concat_token", F_BOOL, OFF(append_concat_token), "False", TRAIN_EVAL, "packing: EOS after each document"},
    {"add_special_tokens", F_BOOL, OFF(add_special_tokens), "False", TRAIN_EVAL, "the tokenizer's BOS/EOS around each text"},
    {"assistant_only_loss", F_BOOL, OFF(assistant_only_loss), "False", TRAIN_EVAL, "train on assistant turns only (needs a chat template)"},
    GROUP("LoRA, DoRA and QLoRA"),
    {"use_peft_lora", F_BOOL, OFF(use_peft_lora), "True", TRAIN, "train LoRA adapters (the only mode)"},
    {"lora_r", F_INT, OFF(lora_r), "64", TRAIN, "LoRA rank"},
    {"lora_alpha", F_DOUBLE, OFF(lora_alpha), "16", TRAIN, "LoRA alpha"},
    {"lora_dropout", F_DOUBLE, OFF(lora_dropout), "0.1", TRAIN, "dropout on the LoRA input"},
    {"lora_target_modules", F_STRING, OFF(lora_target_modules), "q_proj,k_proj,v_proj,o_proj,down_proj,up_proj,gate_proj", TRAIN, "all-linear or a list of q_proj,k_proj,..."},
    {"use_rslora", F_BOOL, OFF(use_rslora), "False", TRAIN, "scale alpha/sqrt(r)"},
    {"use_dora", F_BOOL, OFF(use_dora), "False", TRAIN, "DoRA: a trained magnitude per output row (PEFT's use_dora)"},
    {"modules_to_save", F_STRING, OFF(modules_to_save), NULL, TRAIN, "modules trained fully beside the adapters, saved whole (PEFT's modules_to_save): embed_tokens,lm_head"},
    {"use_4bit_quantization", F_BOOL, OFF(use_4bit_quantization), "False", TRAIN_EVAL | CMD_GENERATE | CMD_MERGE, "QLoRA: the linear layers' weights as 4-bit codes (bitsandbytes), quantized on load"},
    {"bnb_4bit_quant_type", F_STRING, OFF(bnb_4bit_quant_type), "nf4", TRAIN_EVAL | CMD_GENERATE | CMD_MERGE, "nf4 or fp4"},
    {"use_nested_quant", F_BOOL, OFF(use_nested_quant), "False", TRAIN_EVAL | CMD_GENERATE | CMD_MERGE, "4-bit: quantize the block absmax to 8 bits too (double quantization)"},
    {"bnb_4bit_compute_dtype", F_STRING, OFF(bnb_4bit_compute_dtype), "float16", TRAIN_EVAL | CMD_GENERATE | CMD_MERGE, "float32, bfloat16, float16; the products' precision is --bf16's"},
    {"bnb_4bit_quant_storage_dtype", F_STRING, OFF(bnb_4bit_quant_storage_dtype), "uint8", TRAIN_EVAL | CMD_GENERATE | CMD_MERGE, "uint8, bfloat16, float16, float32: how the packed bytes are viewed (the bytes are the same)"},
    GROUP("Training"),
    {"output_dir", F_STRING, OFF(output_dir), NULL, TRAIN, "where metrics.jsonl and the adapter go"},
    {"per_device_train_batch_size", F_INT, OFF(per_device_train_batch_size), "8", TRAIN, "micro-batch size"},
    {"gradient_accumulation_steps", F_INT, OFF(gradient_accumulation_steps), "1", TRAIN, "micro-batches per optimizer step"},
    {"num_train_epochs", F_DOUBLE, OFF(num_train_epochs), "3", TRAIN, "epochs (when max_steps <= 0)"},
    {"max_steps", F_INT, OFF(max_steps), "-1", TRAIN, "optimizer steps; overrides num_train_epochs when > 0"},
    {"learning_rate", F_DOUBLE, OFF(learning_rate), "5e-5", TRAIN, "peak learning rate"},
    {"lr_scheduler_type", F_STRING, OFF(lr_scheduler_type), "linear", TRAIN, "constant, constant_with_warmup, linear, cosine"},
    {"warmup_ratio", F_DOUBLE, OFF(warmup_ratio), "0", TRAIN, "warmup as a fraction of the steps"},
    {"warmup_steps", F_INT, OFF(warmup_steps), "0", TRAIN, "warmup steps (wins over warmup_ratio when > 0)"},
    {"weight_decay", F_DOUBLE, OFF(weight_decay), "0", TRAIN, "AdamW decoupled weight decay"},
    {"max_grad_norm", F_DOUBLE, OFF(max_grad_norm), "1.0", TRAIN, "global gradient-norm clipping (0: off)"},
    {"max_bad_steps", F_INT, OFF(max_bad_steps), "3", TRAIN, "a step whose loss or grad norm is NaN or inf is skipped; this many in a row stop the run, saving the last good state"},
    {"adam_beta1", F_DOUBLE, OFF(adam_beta1), "0.9", TRAIN, "AdamW beta1"},
    {"adam_beta2", F_DOUBLE, OFF(adam_beta2), "0.999", TRAIN, "AdamW beta2"},
    {"adam_epsilon", F_DOUBLE, OFF(adam_epsilon), "1e-8", TRAIN, "AdamW epsilon"},
    {"seed", F_INT, OFF(seed), "42", MODEL_CMDS, "seed of data order, LoRA init and dropout"},
    {"gradient_checkpointing", F_BOOL, OFF(gradient_checkpointing), "False", TRAIN | CMD_DUMP, "recompute each layer in backward"},
    GROUP("Evaluation"),
    {"eval_strategy", F_STRING, OFF(eval_strategy), "no", CMD_TRAIN, "no, steps or epoch: evaluate on the second split"},
    {"evaluation_strategy", F_STRING, OFF(eval_strategy), NULL, CMD_TRAIN, "alias of --eval_strategy (older transformers)"},
    {"eval_steps", F_INT, OFF(eval_steps), "0", CMD_TRAIN, "with --eval_strategy steps: every N steps (0: logging_steps)"},
    {"per_device_eval_batch_size", F_INT, OFF(per_device_eval_batch_size), "8", CMD_EVAL | CMD_TRAIN, "evaluation batch size"},
    {"json", F_BOOL, OFF(json), "False", CMD_EVAL | CMD_PLAN, "print one JSON object"},
    GROUP("Checkpoints"),
    {"save_strategy", F_STRING, OFF(save_strategy), "steps", CMD_TRAIN, "no, steps or epoch: HDF5 checkpoints in --output_dir"},
    {"save_steps", F_INT, OFF(save_steps), "500", CMD_TRAIN, "with --save_strategy steps: every N steps"},
    {"save_total_limit", F_INT, OFF(save_total_limit), "0", CMD_TRAIN, "keep at most N checkpoints (0: all)"},
    {"save_on_error", F_STRING, OFF(save_on_error), "stop", CMD_TRAIN, "stop or continue: what training does when a checkpoint cannot be saved (a full disk); the previous checkpoint and latest are kept either way"},
    {"resume_from_checkpoint", F_STRING, OFF(resume_from_checkpoint), NULL, CMD_TRAIN, "a checkpoint file, or latest (in --output_dir)"},
    {"save_before_time_limit", F_STRING, OFF(save_before_time_limit), "auto", CMD_TRAIN, "True, False or auto (True under Slurm when the job has a time limit, or with SHARDTUNE_JOB_END_TIME): write a checkpoint and stop (exit status 75) before a step that would not end before the job's end time"},
    GROUP("FSDP and devices"),
    {"config_file", F_STRING, OFF(config_file), NULL, MODEL_CMDS, "accelerate config file (YAML), e.g. jobs/configs/fsdp_config.yaml"},
    {"device", F_STRING, OFF(device), NULL, MODEL_CMDS, "cpu, cuda, or auto: cuda when built with it and a GPU answers (default: $SHARDTUNE_DEVICE, else auto); plan: the layout to count (auto: cuda when bf16 is asked for)"},
    {"bf16", F_BOOL, OFF(bf16), "False", MODEL_CMDS, "bf16 matrix products with fp32 accumulation and a bf16 residual stream (as mixed_precision: bf16), on the GPU and on CPUs with AVX512-BF16 (elsewhere the CPU computes in fp32)"},
    {"num_processes", F_INT, OFF(num_processes), "1", CMD_PLAN, "ranks to plan for"},
    {"ranks_per_node", F_INT, OFF(ranks_per_node), "0", CMD_PLAN, "ranks per node (HYBRID_SHARD); 0: all on one node"},
    GROUP("Logging"),
    {"disable_tqdm", F_BOOL, OFF(disable_tqdm), "False", TRAIN, "no live progress line on a terminal (the --logging_steps lines only)"},
    {"logging_steps", F_INT, OFF(logging_steps), "500", TRAIN, "log every N optimizer steps"},
    {"report_to", F_STRING, OFF(report_to), "none", TRAIN, "none, tensorboard or all: TensorBoard event files in --logging_dir, beside metrics.jsonl (wandb, mlflow, ...: noted, not reported)"},
    {"logging_dir", F_STRING, OFF(logging_dir), NULL, TRAIN, "TensorBoard's directory (default OUTPUT_DIR/runs)"},
    GROUP("Generation"),
    {"prompt", F_STRING, OFF(prompt), NULL, CMD_GENERATE, "text to continue"},
    {"max_new_tokens", F_INT, OFF(max_new_tokens), "64", CMD_GENERATE, "tokens to generate at most"},
    {"temperature", F_DOUBLE, OFF(temperature), "0", CMD_GENERATE, "0: greedy; otherwise sample at this temperature"},
    {"top_p", F_DOUBLE, OFF(top_p), "1.0", CMD_GENERATE, "nucleus sampling: keep the most likely tokens up to this mass"},
    {"chat", F_BOOL, OFF(chat), "False", CMD_GENERATE, "render the prompt as a user turn of the tokenizer's chat template (or --chat_template_path's), with the generation prompt"},
    GROUP("Merge"),
    {"out", F_STRING, OFF(out), NULL, CMD_DUMP | CMD_MERGE, "output: .safetensors (dump) or model directory (merge)"},
    {"max_shard_size", F_STRING, OFF(max_shard_size), "5GB", CMD_MERGE, "largest safetensors file of the merged model (GB, MB, KB or bytes)"},
    GROUP("Test tools (model_dump)"),
    {"rows", F_INT, OFF(rows), "1", CMD_DUMP, "rows of the dataset in the batch"},
    {"dropout", F_BOOL, OFF(dump_dropout), "False", CMD_DUMP, "training mode: the adapter's LoRA dropout, masks of train's first micro-batch"},
};

/* Flags of train.py / TrainingArguments / accelerate that later work brings. */
static const char *const later_flags[] = {
    "use_4bit_quantization", "use_8bit_quantization", "use_unsloth", "fsdp", "fsdp_config",
};

/* Flags of train.py / TrainingArguments that change nothing here: accepted
 * with a note, so the PEFT guide's command line runs as it is. */
static const char *const noted_flags[] = {
    "fp16", "use_flash_attn", "use_reentrant", "use_nested_quant", "bnb_4bit_compute_dtype",
    "bnb_4bit_quant_type", "bnb_4bit_quant_storage_dtype", "log_level", "logging_strategy", "hub_strategy",
};

/* Accepted and ignored when they ask for what shardtune does anyway. */
static const char *const harmless_flags[] = {"push_to_hub", "hub_private_repo", "overwrite_output_dir",
                                             "do_train", "remove_unused_columns"};

static int parse_bool(const char *v, int *out)
{
    if (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes"))
        return *out = 1, 0;
    if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no"))
        return *out = 0, 0;
    return -1;
}

static int set_flag(run_config *c, const flag_def *f, const char *v, errbuf *e)
{
    void *field = (char *)c + f->offset;
    char *end = NULL;
    errno = 0;
    switch (f->type) {
    case F_INT: {
        long x = strtol(v, &end, 10);
        if (errno || !*v || *end || x < INT_MIN || x > INT_MAX)
            return err_set(e, "--%s: '%s' is not an integer", f->name, v);
        *(int *)field = (int)x;
        return 0;
    }
    case F_DOUBLE: {
        double x = strtod(v, &end);
        if (errno || !*v || *end || !isfinite(x))
            return err_set(e, "--%s: '%s' is not a number", f->name, v);
        *(double *)field = x;
        return 0;
    }
    case F_BOOL:
        if (parse_bool(v, (int *)field) != 0)
            return err_set(e, "--%s: '%s' is not a boolean (True or False)", f->name, v);
        return 0;
    case F_STRING:
        free(*(char **)field);
        *(char **)field = xstrdup(v);
        return 0;
    case F_GROUP:
        break;
    }
    return -1;
}

static int in_list(const char *name, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(name, list[i]) == 0)
            return 1;
    return 0;
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

int config_check_device(const char *device, const char *source, errbuf *e)
{
    if (strcmp(device, "cpu") && strcmp(device, "cuda") && strcmp(device, "auto"))
        return err_set(e, "%s: '%s' is not one of cpu, cuda, auto", source, device);
    return 0;
}

static int check_values(const run_config *c, command_id cmd, errbuf *e)
{
    if (!c->model_name_or_path)
        return err_set(e, "--model_name_or_path is required");
    if (cmd == CMD_MERGE && (!c->adapter || !c->out))
        return err_set(e, "merge: --adapter and --out are required");
    if (!c->dataset_name && cmd != CMD_PLAN && cmd != CMD_GENERATE && cmd != CMD_MERGE)
        return err_set(e, "--dataset_name is required");
    if (cmd == CMD_GENERATE && !c->prompt)
        return err_set(e, "--prompt is required");
    if (cmd == CMD_GENERATE && (c->max_new_tokens < 1 || c->temperature < 0 || c->top_p <= 0 || c->top_p > 1))
        return err_set(e, "--max_new_tokens must be >= 1, --temperature >= 0, --top_p in (0, 1]");
    if (c->max_seq_len < 2 && cmd != CMD_GENERATE && cmd != CMD_MERGE)
        return err_set(e, "--max_seq_len: %d is too small (at least 2)", c->max_seq_len);
    if (c->chat_template_format && strcmp(c->chat_template_format, "none") &&
        strcmp(c->chat_template_format, "chatml") && strcmp(c->chat_template_format, "zephyr"))
        return err_set(e, "--chat_template_format: '%s' is not one of chatml, zephyr, none", c->chat_template_format);
    if (c->packing_strategy && strcmp(c->packing_strategy, "wrapped") && strcmp(c->packing_strategy, "bfd"))
        return err_set(e, "--packing_strategy: '%s' is not one of wrapped, bfd", c->packing_strategy);
    if (c->chat_template_path && c->chat_template_format && strcmp(c->chat_template_format, "none"))
        return err_set(e, "--chat_template_path and --chat_template_format %s: give one of the two",
                       c->chat_template_format);
    if (c->device && config_check_device(c->device, "--device", e) != 0)
        return -1;
    if (c->dataset_text_field && !*c->dataset_text_field)
        return err_set(e, "--dataset_text_field: must not be empty");
    if (c->bnb_4bit_quant_type && strcmp(c->bnb_4bit_quant_type, "nf4") && strcmp(c->bnb_4bit_quant_type, "fp4"))
        return err_set(e, "--bnb_4bit_quant_type: '%s' is not one of nf4, fp4", c->bnb_4bit_quant_type);
    if (c->bnb_4bit_compute_dtype && strcmp(c->bnb_4bit_compute_dtype, "float32") &&
        strcmp(c->bnb_4bit_compute_dtype, "bfloat16") && strcmp(c->bnb_4bit_compute_dtype, "float16"))
        return err_set(e, "--bnb_4bit_compute_dtype: '%s' is not one of float32, bfloat16, float16",
                       c->bnb_4bit_compute_dtype);
    if (c->bnb_4bit_quant_storage_dtype && strcmp(c->bnb_4bit_quant_storage_dtype, "uint8") &&
        strcmp(c->bnb_4bit_quant_storage_dtype, "bfloat16") && strcmp(c->bnb_4bit_quant_storage_dtype, "float16") &&
        strcmp(c->bnb_4bit_quant_storage_dtype, "float32"))
        return err_set(e, "--bnb_4bit_quant_storage_dtype: '%s' is not one of uint8, bfloat16, float16, float32",
                       c->bnb_4bit_quant_storage_dtype);
    if (cmd == CMD_PLAN && c->num_processes < 1)
        return err_set(e, "--num_processes: must be at least 1");
    if (cmd == CMD_TRAIN || cmd == CMD_PLAN) {
        if (!c->output_dir && cmd == CMD_TRAIN)
            return err_set(e, "--output_dir is required");
        if (c->per_device_train_batch_size < 1)
            return err_set(e, "--per_device_train_batch_size: must be at least 1");
        if (c->gradient_accumulation_steps < 1)
            return err_set(e, "--gradient_accumulation_steps: must be at least 1");
        if (c->learning_rate < 0)
            return err_set(e, "--learning_rate: must not be negative");
        if (c->warmup_ratio < 0 || c->warmup_ratio > 1)
            return err_set(e, "--warmup_ratio: %g is not in [0, 1]", c->warmup_ratio);
        if (c->warmup_steps < 0)
            return err_set(e, "--warmup_steps: must not be negative");
        if (c->max_steps <= 0 && c->num_train_epochs <= 0)
            return err_set(e, "--num_train_epochs: must be positive when --max_steps is not set");
        if (c->max_bad_steps < 1)
            return err_set(e, "--max_bad_steps: must be at least 1");
        if (c->logging_steps < 1)
            return err_set(e, "--logging_steps: must be at least 1");
        if (!c->use_peft_lora)
            return err_set(e, "--use_peft_lora False: full fine-tuning is not supported, shardtune trains adapters");
        if (c->lora_r < 1)
            return err_set(e, "--lora_r: must be at least 1");
        if (c->lora_dropout < 0 || c->lora_dropout >= 1)
            return err_set(e, "--lora_dropout: %g is not in [0, 1)", c->lora_dropout);
        if (c->adam_beta1 < 0 || c->adam_beta1 >= 1 || c->adam_beta2 < 0 || c->adam_beta2 >= 1)
            return err_set(e, "--adam_beta1/--adam_beta2: must be in [0, 1)");
        int tensorboard;
        char others[256];
        if (report_to_parse(c->report_to, &tensorboard, others, sizeof others, e) != 0)
            return -1;
        if (*others && cmd == CMD_TRAIN)
            log_info("note: --report_to %s: this build writes local logs only (metrics.jsonl; TensorBoard files with "
                     "tensorboard): nothing goes to %s", c->report_to, others);
        if (c->logging_dir && !*c->logging_dir)
            return err_set(e, "--logging_dir: must not be empty");
        if (c->modules_to_save && c->adapter)
            return err_set(e, "--modules_to_save: not with --adapter, whose adapter_config.json lists its modules_to_save");
    }
    if (cmd == CMD_TRAIN && strcmp(c->eval_strategy, "no") && strcmp(c->eval_strategy, "steps") &&
        strcmp(c->eval_strategy, "epoch"))
        return err_set(e, "--eval_strategy: '%s' is not one of no, steps, epoch", c->eval_strategy);
    if (cmd == CMD_TRAIN && strcmp(c->save_strategy, "no") && strcmp(c->save_strategy, "steps") &&
        strcmp(c->save_strategy, "epoch"))
        return err_set(e, "--save_strategy: '%s' is not one of no, steps, epoch", c->save_strategy);
    if (cmd == CMD_TRAIN && strcmp(c->save_on_error, "stop") && strcmp(c->save_on_error, "continue"))
        return err_set(e, "--save_on_error: '%s' is not one of stop, continue", c->save_on_error);
    if (cmd == CMD_TRAIN && (c->save_steps < 1 || c->save_total_limit < 0))
        return err_set(e, "--save_steps must be >= 1 and --save_total_limit >= 0");
    if (cmd == CMD_TRAIN && strcasecmp(c->save_before_time_limit, "true") &&
        strcasecmp(c->save_before_time_limit, "false") && strcasecmp(c->save_before_time_limit, "auto"))
        return err_set(e, "--save_before_time_limit: '%s' is not one of True, False, auto", c->save_before_time_limit);
    if (cmd == CMD_TRAIN && c->eval_steps < 0)
        return err_set(e, "--eval_steps: must not be negative");
    if ((cmd == CMD_EVAL || cmd == CMD_TRAIN) && c->per_device_eval_batch_size < 1)
        return err_set(e, "--per_device_eval_batch_size: must be at least 1");
    if ((cmd == CMD_DUMP || cmd == CMD_MERGE) && !c->out)
        return err_set(e, "--out is required");
    return 0;
}

/* The commands of a mask, "train, plan". */
static void command_names(unsigned mask, char *out, size_t cap)
{
    static const struct {
        unsigned id;
        const char *name;
    } names[] = {{CMD_TRAIN, "train"}, {CMD_EVAL, "eval"}, {CMD_PLAN, "plan"}, {CMD_GENERATE, "generate"},
                 {CMD_MERGE, "merge"}, {CMD_DUMP, "model_dump"}};
    size_t n = 0;
    out[0] = 0;
    for (size_t i = 0; i < COUNT(names); i++)
        if (mask & names[i].id)
            n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s%s", n ? ", " : "", names[i].name);
}

/* An unknown flag: a flag of another command says so; a misspelt one names
 * the nearest this command takes (or accepts). */
static int unknown_flag(const char *name, command_id cmd, errbuf *e)
{
    char self[64], others[128];
    command_names(cmd, self, sizeof self);
    for (size_t k = 0; k < COUNT(flags); k++)
        if (flags[k].commands && strcmp(flags[k].name, name) == 0) {
            command_names(flags[k].commands, others, sizeof others);
            return err_set(e, "--%s: not a flag of %s (a flag of %s)", name, self, others);
        }
    suggestion sg;
    suggest_begin(&sg, name);
    for (size_t k = 0; k < COUNT(flags); k++)
        if (flags[k].commands & cmd)
            suggest_offer(&sg, flags[k].name);
    for (size_t k = 0; k < COUNT(noted_flags); k++)
        suggest_offer(&sg, noted_flags[k]);
    for (size_t k = 0; k < COUNT(harmless_flags); k++)
        suggest_offer(&sg, harmless_flags[k]);
    const char *near = suggest_result(&sg);
    if (near)
        return err_set(e, "--%s: unknown flag (did you mean --%s?)", name, near);
    return err_set(e, "--%s: unknown flag (see shardtune %s --help)", name, self);
}

int config_parse(run_config *c, command_id cmd, int argc, char **argv, errbuf *e)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < COUNT(flags); i++)
        if (flags[i].default_value && (flags[i].commands & cmd))
            set_flag(c, &flags[i], flags[i].default_value, NULL);
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0)
            return err_set(e, "unexpected argument '%s' (flags are --name value)", arg);
        char name[128];
        const char *eq = strchr(arg + 2, '=');
        size_t len = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        if (len >= sizeof name)
            return err_set(e, "%s: unknown flag", arg);
        memcpy(name, arg + 2, len);
        name[len] = '\0';
        const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[i + 1] : NULL);
        const flag_def *f = NULL;
        for (size_t k = 0; k < COUNT(flags); k++)
            if ((flags[k].commands & cmd) && strcmp(flags[k].name, name) == 0)
                f = &flags[k];
        /* a bare flag (no value follows) is a boolean True, as with HfArgumentParser */
        const int bare = !eq && (!value || strncmp(value, "--", 2) == 0);
        int truth = 1;
        if (!bare && parse_bool(value, &truth) != 0)
            truth = 1;
        if (!f && in_list(name, later_flags, COUNT(later_flags))) {
            if (truth)
                return err_set(e, "--%s: not supported yet", name);
            if (!eq) /* False asks for nothing */
                i++;
            continue;
        }
        if (!f && (in_list(name, harmless_flags, COUNT(harmless_flags)) ||
                   in_list(name, noted_flags, COUNT(noted_flags)))) {
            if (in_list(name, noted_flags, COUNT(noted_flags)) && truth)
                log_info("note: --%s %s has no effect in shardtune (CPU backend: fp32 compute, its own "
                         "attention and recomputation, its own logging)", name, bare ? "True" : value);
            if (!bare && !eq)
                i++;
            continue;
        }
        if (!f)
            return unknown_flag(name, cmd, e);
        if (f->type == F_BOOL && bare) {
            *(int *)((char *)c + f->offset) = 1;
            continue;
        }
        if (!value)
            return err_set(e, "--%s: missing value", name);
        if (set_flag(c, f, value, e) != 0)
            return -1;
        if (!eq)
            i++;
    }
    return check_values(c, cmd, e);
}

void config_free(run_config *c)
{
    for (size_t i = 0; i < COUNT(flags); i++)
        if (flags[i].type == F_STRING) {
            char **field = (char **)((char *)c + flags[i].offset);
            free(*field);
            *field = NULL;
        }
}

void config_print_help(command_id cmd)
{
    const char *group = NULL;
    for (size_t i = 0; i < COUNT(flags); i++) {
        if (flags[i].type == F_GROUP) {
            group = flags[i].name;
            continue;
        }
        if (!(flags[i].commands & cmd))
            continue;
        if (group) { /* a heading only above flags the command takes */
            printf("%s:\n", group);
            group = NULL;
        }
        printf("  --%-30s %s%s%s%s\n", flags[i].name, flags[i].help, flags[i].default_value ? " (default " : "",
               flags[i].default_value ? flags[i].default_value : "", flags[i].default_value ? ")" : "");
    }
}

int config_flag_at(size_t i, config_flag *out)
{
    static const char *const types[] = {"INT", "NUMBER", "BOOL", "TEXT", NULL};
    if (i >= COUNT(flags))
        return -1;
    const flag_def *f = &flags[i];
    *out = (config_flag){f->name, types[f->type], f->default_value, f->help, f->commands};
    return 0;
}
