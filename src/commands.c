/* commands.c: the command table and what is printed from it: usage,
 * --version, the man page (see commands.h). */
#include "commands.h"

#include <hdf5.h>
#include <jansson.h>
#include <limits.h>
#include <mpi.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <string.h>
#include <yaml.h>

#include "cuda_plugin.h"
#include "gemm.h"

const command_doc shardtune_commands[] = {
    {"train", "[flags]", "fine-tune LoRA / DoRA / QLoRA adapters (flags as PEFT's train.py / TrainingArguments)",
     CMD_TRAIN},
    {"eval", "[flags]", "mean token loss of a model (and adapter) over a dataset", CMD_EVAL},
    {"generate", "--model_name_or_path DIR [--adapter DIR] --prompt TEXT [flags]",
     "continue a prompt (KV-cache decoding; --chat: as a user turn of the chat template)", CMD_GENERATE},
    {"merge", "--model_name_or_path BASE --adapter DIR --out DIR [flags]",
     "the base model with the adapter merged in, as safetensors (in parallel over the ranks)", CMD_MERGE},
    {"plan", "[flags]", "expected memory per rank and traffic per step, from config.json alone", CMD_PLAN},
    {"plot", "RUN_DIR... [--out FILE.png|FILE.svg]", "loss and learning rate against step (loss.png, loss.svg)", 0},
    {"export", "CHECKPOINT --out DIR", "the PEFT adapter of an HDF5 checkpoint", 0},
    {"convert", "llama2c --checkpoint FILE --tokenizer FILE --out DIR",
     "a llama2.c checkpoint and tokenizer as a Hugging Face model directory", 0},
    {"tokenize", "--tokenizer PATH [--add_special_tokens True|False] [--decode] TEXT...",
     "token ids of texts (or texts of ids) with a Hugging Face tokenizer", 0},
    {"chat-template", "(--model_name_or_path DIR | --chat_template_path FILE) [--add_generation_prompt] [--jsonl] FILE",
     "conversations of a data file as the model's own chat template renders them", 0},
    {"help", "[--man]", "this text (--man: the manual page); `shardtune COMMAND --help` lists a command's flags", 0},
    {NULL, NULL, NULL, 0},
};

void commands_print_usage(FILE *out)
{
    fprintf(out, "usage: shardtune <command> [flags]   (shardtune --version)\ncommands:\n");
    for (const command_doc *c = shardtune_commands; c->name; c++)
        fprintf(out, "  %-14s %s\n  %-14s   %s\n", c->name, c->synopsis, "", c->summary);
}

void commands_print_version(FILE *out)
{
    fprintf(out, "shardtune %s\n", SHARDTUNE_VERSION);
    char plugin[PATH_MAX + 32];
    char gemm_lib[128];
    gemm_library_version(gemm_lib, sizeof gemm_lib);
    fprintf(out, "backends: CPU (oneDNN, OpenMP; --bf16 computes in bf16: %s)",
            gemm_cpu_has_bf16() ? "yes" : "no, this CPU has no bf16 instructions");
    if (cuda_plugin_find(plugin, sizeof plugin) == 0)
        fprintf(out, ", CUDA (%s)\n", plugin);
    else
        fprintf(out, "; CUDA not built (no shardtune-cuda.so)\n");
    char mpi[MPI_MAX_LIBRARY_VERSION_STRING];
    int n = 0;
    MPI_Get_library_version(mpi, &n); /* allowed before MPI_Init */
    char *nl = strchr(mpi, ',');
    if (nl)
        *nl = 0;
    unsigned h5[3];
    H5get_libversion(&h5[0], &h5[1], &h5[2]);
    char pcre[64] = "?";
    pcre2_config(PCRE2_CONFIG_VERSION, pcre);
    fprintf(out, "libraries: %s; HDF5 %u.%u.%u (parallel); %s; jansson %s; PCRE2 %s; libyaml %s\n", mpi, h5[0],
            h5[1], h5[2], gemm_lib, jansson_version_str(), pcre, yaml_get_version_string());
}

/* Text for roff: a leading dot or quote escaped, backslashes doubled,
 * hyphens of flags kept as minus signs. */
static void roff_text(FILE *out, const char *s)
{
    if (*s == '.' || *s == '\'')
        fputs("\\&", out);
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\e", out);
        else if (*s == '-')
            fputs("\\-", out);
        else
            fputc(*s, out);
    }
}

static void man_flags(FILE *out, unsigned cmd)
{
    config_flag f;
    const char *heading = NULL;
    for (size_t i = 0; config_flag_at(i, &f) == 0; i++) {
        if (!f.type) {
            heading = f.name;
            continue;
        }
        if (!(f.commands & cmd))
            continue;
        if (heading) {
            fprintf(out, ".SS ");
            roff_text(out, heading);
            fputc('\n', out);
            heading = NULL;
        }
        fprintf(out, ".TP\n.BI \\-\\-");
        roff_text(out, f.name);
        fprintf(out, " \" %s\"\n", f.type);
        roff_text(out, f.help);
        if (f.default_value) {
            fprintf(out, " (default ");
            roff_text(out, f.default_value);
            fputc(')', out);
        }
        fputc('\n', out);
    }
}

void commands_print_man(FILE *out)
{
    fprintf(out, ".TH SHARDTUNE 1 \"\" \"shardtune %s\" \"User Commands\"\n", SHARDTUNE_VERSION);
    fprintf(out, ".SH NAME\nshardtune \\- fine-tune Llama models with LoRA, DoRA and QLoRA adapters under FSDP\n");
    fprintf(out, ".SH SYNOPSIS\n.B shardtune\n.I command\n[\\fIflags\\fR]\n.br\n"
                 ".B mpirun \\-np\n.I N\n.B shardtune train\n[\\fIflags\\fR]\n");
    fprintf(out, ".SH DESCRIPTION\nshardtune reads a Hugging Face Llama model directory and trains PEFT adapters "
                 "with the flags of PEFT's train.py and transformers' TrainingArguments, sharding the model over "
                 "MPI ranks as accelerate's FSDP does (configured by the same YAML files, \\fB\\-\\-config_file\\fR). "
                 "Flags are \\fB\\-\\-name value\\fR or \\fB\\-\\-name=value\\fR; a boolean flag alone means True.\n");
    fprintf(out, ".SH COMMANDS\n");
    for (const command_doc *c = shardtune_commands; c->name; c++) {
        fprintf(out, ".TP\n.B %s\n", c->name);
        roff_text(out, c->synopsis);
        fprintf(out, "\n.br\n");
        roff_text(out, c->summary);
        fputc('\n', out);
    }
    for (const command_doc *c = shardtune_commands; c->name; c++)
        if (c->flags_of) {
            fprintf(out, ".SH FLAGS OF %s\n", c->name);
            man_flags(out, c->flags_of);
        }
    fprintf(out, ".SH EXIT STATUS\n0 on success; 1 when the run fails (one line \\fBshardtune: error:\\fR naming the "
                 "file or flag); 2 for a usage error. Under MPI, one rank's error ends every rank.\n");
    fprintf(out, ".SH ENVIRONMENT\n.TP\n.B SHARDTUNE_DEVICE\ncpu, cuda or auto: the default of \\fB\\-\\-device\\fR.\n"
                 ".TP\n.B OMP_NUM_THREADS\nthreads of the CPU backend per rank.\n"
                 ".TP\n.B SHARDTUNE_CUDA_PLUGIN\nthe CUDA backend plugin to load instead of shardtune\\-cuda.so.\n"
                 ".TP\n.B FSDP_*\naccelerate's FSDP environment variables, as accelerate reads them.\n");
    fprintf(out, ".SH FILES\n.TP\n.I OUTPUT_DIR/metrics.jsonl\none line per logged step (transformers' log_history "
                 "keys).\n.TP\n.I OUTPUT_DIR/checkpoint\\-N.h5\nHDF5 checkpoints that resume at any world size.\n"
                 ".TP\n.I OUTPUT_DIR/adapter_model.safetensors\nthe PEFT adapter, with adapter_config.json.\n");
    fprintf(out, ".SH SEE ALSO\n.BR mpirun (1),\n.BR srun (1);\nREADME.md and doc/design.md in the source.\n");
}
