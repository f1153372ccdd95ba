/* config.h: command-line flags, named as PEFT's examples/sft/train.py and
 * transformers' TrainingArguments name them, into one struct. */
#ifndef SHARDTUNE_CONFIG_H
#define SHARDTUNE_CONFIG_H

#include "log.h"

typedef enum command_id { CMD_TRAIN = 1, CMD_EVAL = 2, CMD_DUMP = 4, CMD_PLAN = 8, CMD_GENERATE = 16, CMD_MERGE = 32 } command_id;

typedef struct run_config {
    /* model and data */
    char *model_name_or_path;
    char *dataset_name;
    char *output_dir;
    char *adapter;              /* a PEFT adapter dir to start from / evaluate */
    char *config_file;          /* an accelerate config (YAML) */
    int max_seq_len;
    /* data (train.py's and TRL's names; data.h turns them into data_options) */
    char *dataset_text_field;
    char *chat_template_format;
    char *chat_template_path;   /* a Jinja chat template (TRL's flag), else the model's own */
    int packing;
    char *packing_strategy;
    int append_concat_token;
    int add_special_tokens;
    char *splits;
    int assistant_only_loss;
    /* batches and schedule */
    int per_device_train_batch_size;
    int per_device_eval_batch_size;
    char *eval_strategy;        /* no | steps | epoch */
    char *save_strategy;        /* no | steps | epoch */
    int save_steps;
    int save_total_limit;       /* 0: keep every checkpoint */
    char *save_on_error;        /* stop | continue: after a failed checkpoint save */
    char *resume_from_checkpoint; /* a checkpoint file, or "latest" in --output_dir */
    char *save_before_time_limit; /* True | False | auto: stop and save before the job's end time */
    int eval_steps;             /* 0: logging_steps, as transformers */
    int gradient_accumulation_steps;
    double num_train_epochs;
    int max_steps;
    double learning_rate;
    char *lr_scheduler_type;
    double warmup_ratio;
    int warmup_steps;
    double weight_decay;
    double max_grad_norm;
    int max_bad_steps;          /* non-finite steps in a row that stop the run (bad_steps.h) */
    double adam_beta1, adam_beta2, adam_epsilon;
    int seed;
    char *device;               /* cpu | cuda | auto */
    int bf16;
    int logging_steps;
    char *report_to;            /* none | tensorboard | all | a list with others (noted) */
    char *logging_dir;          /* TensorBoard's; NULL: OUTPUT_DIR/runs */
    int gradient_checkpointing;
    /* LoRA */
    int use_peft_lora;
    int lora_r;
    double lora_alpha;
    double lora_dropout;
    char *lora_target_modules;
    int use_rslora;
    int use_dora;
    char *modules_to_save;  /* NULL: none */
    /* output */
    int json;
    /* generate */
    char *prompt;
    int max_new_tokens;
    double temperature, top_p;
    int chat;
    int disable_tqdm;   /* no live progress line (TrainingArguments' flag) */
    /* plan */
    int num_processes;
    int ranks_per_node;
    char *torch_dtype;
    int use_4bit_quantization;
    /* QLoRA (train, eval, generate, model_dump; plan sizes nested NF4) */
    int use_nested_quant;
    char *bnb_4bit_quant_type;          /* nf4 | fp4 */
    char *bnb_4bit_compute_dtype;       /* the products' precision is --bf16's whatever this says */
    char *bnb_4bit_quant_storage_dtype; /* a view of the packed bytes only */
    /* merge */
    char *max_shard_size;       /* "5GB", "200MB", or bytes */
    /* model_dump (tests) */
    int rows;
    int dump_dropout; /* model_dump: training mode, LoRA dropout on */
    char *out;
} run_config;

/* Fills defaults (TrainingArguments' and train.py's), then parses argv for
 * command `cmd`.  An unknown flag or a bad value is an error naming it
 * (the caller exits with status 2).  Flags that belong to later work are
 * recognised and refused as "not supported yet". */
int config_parse(run_config *c, command_id cmd, int argc, char **argv, errbuf *e);
void config_free(run_config *c);
/* 0 when device is cpu, cuda or auto; else -1 and a message naming source
 * (the flag or the environment variable it came from). */
int config_check_device(const char *device, const char *source, errbuf *e);
/* Prints the flags of cmd with their defaults, under their headings. */
void config_print_help(command_id cmd);

/* Entry i of the flag table (for the man page): a heading (commands 0,
 * type NULL) or a flag.  0, or -1 past the end. */
typedef struct config_flag {
    const char *name;          /* the flag without "--", or the heading */
    const char *type;          /* "INT", "NUMBER", "BOOL", "TEXT"; NULL for a heading */
    const char *default_value; /* NULL: none */
    const char *help;
    unsigned commands;         /* command_id bits */
} config_flag;
int config_flag_at(size_t i, config_flag *out);

#endif
