/* safetensors.h: read (mmap) and write Hugging Face .safetensors files.
 *
 * Format: 8-byte little-endian header length N, then N bytes of JSON
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 *  "__metadata__": {"k": "v"}}, then the data block.  The reader validates
 * everything before handing out a pointer: header size bound, valid JSON,
 * offsets inside the data block, contiguous, non-overlapping and covering it
 * exactly, byte size = numel x dtype size.  A model directory is either one
 * model.safetensors or model.safetensors.index.json plus its shards. */
#ifndef SHARDTUNE_SAFETENSORS_H
#define SHARDTUNE_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "log.h"

typedef enum st_dtype {
    ST_BOOL, ST_U8, ST_I8, ST_I16, ST_U16, ST_F16, ST_BF16, ST_I32, ST_U32, ST_F32,
    ST_I64, ST_U64, ST_F64, ST_N_DTYPES
} st_dtype;

enum { ST_MAX_DIMS = 8 };

typedef struct st_tensor {
    const char *name;
    st_dtype dtype;
    int n_dims;
    int64_t shape[ST_MAX_DIMS];
    size_t n_elems;
    size_t n_bytes;
    const void *data;      /* inside the mmapped file */
    const char *file_path; /* the file that holds it */
    size_t file_offset;    /* absolute byte offset of data in that file */
} st_tensor;

typedef struct safetensors safetensors; /* one file or a sharded set */

/* Opens one .safetensors file (mmap, validated).  NULL and e set on failure;
 * the message names the file and what is wrong. */
safetensors *safetensors_open(const char *path, errbuf *e);
/* Opens a model directory: model.safetensors, or the shards listed by
 * model.safetensors.index.json (every listed tensor must be found in the
 * shard the index names). */
safetensors *safetensors_open_dir(const char *dir, errbuf *e);
void safetensors_close(safetensors *st);

size_t safetensors_count(const safetensors *st);
const st_tensor *safetensors_at(const safetensors *st, size_t i);
/* NULL when absent. */
const st_tensor *safetensors_find(const safetensors *st, const char *name);
/* __metadata__ value, NULL when absent (first file for a sharded set). */
const char *safetensors_metadata(const safetensors *st, const char *key);

const char *st_dtype_name(st_dtype d);
size_t st_dtype_size(st_dtype d);
/* -1 for an unknown name. */
int st_dtype_from_name(const char *name);

/* Converts a F32, F16 or BF16 tensor to fp32 (n_elems floats).  -1 and e set
 * for other dtypes. */
int st_tensor_to_f32(const st_tensor *t, float *out, errbuf *e);
/* Checks dtype-independent shape: error naming the tensor, the expected and
 * the actual shape when they differ. */
int st_tensor_check_shape(const st_tensor *t, int n_dims, const int64_t *shape, errbuf *e);

/* Writer: collects tensors (the data is referenced, not copied, until
 * st_writer_write) and writes header (padded with spaces to a multiple of 8
 * bytes) and data in the order added.  The file is written to PATH.tmp and
 * renamed when complete, so a failure never leaves a truncated file. */
typedef struct st_writer st_writer;
st_writer *st_writer_new(void);
void st_writer_add(st_writer *w, const char *name, st_dtype dtype, int n_dims,
                   const int64_t *shape, const void *data);
void st_writer_metadata(st_writer *w, const char *key, const char *value);
int st_writer_write(st_writer *w, const char *path, errbuf *e);
void st_writer_free(st_writer *w);

#endif
