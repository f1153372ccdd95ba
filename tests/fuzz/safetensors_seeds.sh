#!/bin/sh
# safetensors_seeds.sh DIR [SHARDTUNE]: the seed inputs of the safetensors
# fuzz targets: DIR/file (fuzz_safetensors: whole files) and DIR/index
# (fuzz_safetensors_index: 4-byte index length, index, shard).  The files:
# small valid ones (every dtype family, metadata, an empty tensor, several
# tensors out of header order), malformed ones (each a check of the reader),
# and with SHARDTUNE the shipped stories260K converted (libFuzzer cuts it to
# -max_len; its header is what the seeds are for).
set -eu
. "$(dirname "$0")/seeds_lib.sh"
f="$1/file" x="$1/index"
mkdir -p "$f" "$x"
st_write "$f/f32.st" '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}' '\0\0\0200\077\0\0\0\100'
st_write "$f/meta.st" '{"__metadata__":{"format":"pt"},"w":{"dtype":"BF16","shape":[1,2],"data_offsets":[0,4]}}    ' \
    '\0200\077\0\100'
st_write "$f/mixed.st" '{"b":{"dtype":"F16","shape":[2],"data_offsets":[4,8]},"a":{"dtype":"I32","shape":[1],"data_offsets":[0,4]},"e":{"dtype":"U8","shape":[0],"data_offsets":[8,8]},"c":{"dtype":"F64","shape":[],"data_offsets":[8,16]}}' \
    '\001\0\0\0\0\074\0\100\0\0\0\0\0\0\0360\077'
st_write "$f/null_meta.st" '{"__metadata__":null,"x":{"dtype":"BOOL","shape":[1,1,1],"data_offsets":[0,1]}}' '\001'
st_write "$f/empty.st" '{}' ''
# malformed: each one refused by its own check
st_write "$f/bad_json.st" '{"a":{"dtype":"F32",' ''
st_write "$f/bad_dtype.st" '{"a":{"dtype":"F8","shape":[1],"data_offsets":[0,1]}}' '\0'
st_write "$f/overlap.st" '{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}' '\0\0\0'
st_write "$f/gap.st" '{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}' '\0\0'
st_write "$f/trailing.st" '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}' '\0\0'
st_write "$f/past_end.st" '{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}' '\0\0\0\0'
st_write "$f/huge_shape.st" '{"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}}' '\0'
st_write "$f/dup.st" '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}' '\0\0'
st_write "$f/bad_meta.st" '{"__metadata__":{"k":1}}' ''
printf '\377\377\377\377\377\377\377\377{}' >"$f/huge_length.st"
printf '\004\0\0' >"$f/short.st"
if [ $# -ge 2 ]; then
    convert_model "$2" "$1/model"
    cp "$1/model/model.safetensors" "$f/stories260K.st"
    rm -rf "$1/model"
fi
# the index target: the shard file name the target writes, and others
shard=model-00001-of-00001.safetensors
for s in f32 mixed meta; do
    case $s in
    f32) map='{"a":"'$shard'"}' ;;
    mixed) map='{"a":"'$shard'","b":"'$shard'","c":"'$shard'","e":"'$shard'"}' ;;
    meta) map='{"w":"./'$shard'"}' ;;
    esac
    index='{"metadata":{"total_size":8},"weight_map":'$map'}'
    { printf '%b' "$(le_bytes ${#index} 4)"; printf '%s' "$index"; cat "$f/$s.st"; } >"$x/$s.in"
done
for bad in '{"weight_map":{"a":"../'$shard'"}}' '{"weight_map":{"a":"model-00002-of-00002.safetensors"}}' \
    '{"weight_map":{}}' '{"weight_map":{"z":"'$shard'"}}' '[]'; do
    n=$(($(ls "$x" | wc -l) + 1))
    { printf '%b' "$(le_bytes ${#bad} 4)"; printf '%s' "$bad"; cat "$f/f32.st"; } >"$x/bad_$n.in"
done
