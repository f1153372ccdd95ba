# tests/quant: NF4 / FP4 blockwise quantization and its nested 8-bit absmax
# (src/quant4.c), against the published tables and against bitsandbytes.

# Unit tests (cmocka): the 16-value tables, packing, odd sizes, ties, zero
# blocks, round-trip error, the dynamic map and nested quantization.
check_PROGRAMS += tests/quant/test_quant4
tests_quant_test_quant4_SOURCES = tests/quant/test_quant4.c
tests_quant_test_quant4_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_quant_test_quant4_LDADD = $(LDADD_COMMON) $(CMOCKA_LIBS)
TESTS += tests/quant/test_quant4

# quant_dump: quantizes every tensor of a safetensors file and writes codes,
# absmax, nested state and dequantized values, for the bitsandbytes check.
check_PROGRAMS += tests/quant/quant_dump
tests_quant_quant_dump_SOURCES = tests/quant/quant_dump.c
tests_quant_quant_dump_LDADD = $(LDADD_COMMON)

TESTS += tests/quant/quant_bnb.sh
EXTRA_DIST += tests/quant/quant_bnb.sh tests/quant/quant_bnb.py
