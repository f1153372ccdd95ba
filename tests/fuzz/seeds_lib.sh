# seeds_lib.sh: sourced by the <name>_seeds.sh scripts of the file-parser
# fuzz targets.

# le_bytes N COUNT: N as COUNT little-endian bytes (printf %b escapes).
le_bytes() {
    _n=$1 _i=0 _out=
    while [ "$_i" -lt "$2" ]; do
        _out="$_out\\0$(printf %o $((_n % 256)))"
        _n=$((_n / 256)) _i=$((_i + 1))
    done
    printf '%s' "$_out"
}

# st_write FILE HEADER DATA: a .safetensors file: the 8-byte length of
# HEADER, HEADER (JSON), DATA (printf %b escapes).
st_write() {
    { printf '%b' "$(le_bytes ${#2} 8)"; printf '%s' "$2"; printf '%b' "$3"; } >"$1"
}

# convert_model SHARDTUNE DIR: the shipped stories260K converted into DIR
# (config.json, model.safetensors), as the reference tests make it.
convert_model() {
    _assets="$(cd "$(dirname "$0")/../../assets" && pwd)"
    "$1" convert llama2c --checkpoint "$_assets/model/stories260K.bin" --tokenizer "$_assets/model/tok512.bin" \
        --out "$2" >/dev/null
}
