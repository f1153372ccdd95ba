#!/bin/sh
# checkpoint_seeds.sh DIR: seeds of fuzz_checkpoint (each input describes a
# checkpoint, fuzz_checkpoint.c).  A zero byte says "right" to every
# choice, so runs of zeros are whole valid checkpoints of either layout;
# then one of each way to be wrong, at the offsets the target reads them:
# 0 layout, 1 format (mode, 8 bytes, [length, text]), 10 + 9 i the i-th of
# format_version, the six counts and the fingerprint (mode, 8 bytes, big
# endian), 82 layout, 91 config, 100 the first dataset (mode, 2 bytes per
# value, ...).
set -eu
out=$1
mkdir -p "$out"
zeros() { head -c "$1" /dev/zero; }
other() { printf '\002'; printf "$1"; } # OTHER_VALUE, then 8 bytes
zeros 2000 > "$out/sharded-right"
{ printf '\001'; zeros 2000; } > "$out/full-right"
{ printf '\000\001'; zeros 2000; } > "$out/format-missing"
{ printf '\000\002'; zeros 8; printf '\024shardtune-checkpoinT'; zeros 2000; } > "$out/format-other"
{ printf '\000\003'; zeros 2000; } > "$out/format-int"
{ zeros 10; other '\0\0\0\0\0\0\0\002'; zeros 2000; } > "$out/version-2"
{ zeros 19; other '\377\377\377\377\377\377\377\377'; zeros 2000; } > "$out/global-step-negative"
{ zeros 19; other '\0\0\0\001\0\0\0\002'; zeros 2000; } > "$out/global-step-over-int"
{ zeros 19; other '\0\0\0\0\0\0\0\002'; zeros 2000; } > "$out/global-step-2"
{ zeros 37; other '\0\0\0\0\0\0\0\0'; zeros 2000; } > "$out/steps-per-epoch-0"
{ zeros 46; other '\0\0\0\0\0\0\0\011'; zeros 2000; } > "$out/adam-step-over-global"
{ zeros 64; other '\0\0\0\0\0\0\0\0'; zeros 2000; } > "$out/world-size-0"
{ zeros 73; other '\0\0\0\0\0\0\0\001'; zeros 2000; } > "$out/fingerprint-other"
{ zeros 73; printf '\003'; zeros 2000; } > "$out/fingerprint-string"
{ zeros 82; printf '\002'; zeros 8; printf '\004full'; zeros 2000; } > "$out/layout-other"
{ zeros 100; printf '\001'; zeros 2000; } > "$out/dataset-missing"
{ zeros 100; printf '\002'; zeros 24; printf '\001\003\004'; zeros 2000; } > "$out/dataset-shape"
{ zeros 100; printf '\003'; zeros 24; printf '\0\0\0\0\0\0\0\001'; zeros 2000; } > "$out/dataset-checksum"
{ zeros 100; printf '\004'; zeros 2000; } > "$out/dataset-no-checksum"
{ zeros 100; printf '\005'; zeros 2000; } > "$out/dataset-float64"
{ printf '\001'; zeros 99; printf '\002'; zeros 12; printf '\002\003\002'; zeros 2000; } > "$out/full-dataset-shape"
# values: the top two bytes of each float (NaN and inf among them)
{ zeros 100; printf '\000\177\200\377\377\177\300\000\001\200\000'; zeros 2000; } > "$out/special-values"
