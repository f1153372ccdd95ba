# SHARDTUNE_CHECK_FUZZING: the libFuzzer targets of tests/fuzz, built by
# clang with -fsanitize=fuzzer,address,undefined (Debian: clang-14 and
# libclang-rt-14-dev).  --enable-fuzzing requires them, --disable-fuzzing
# leaves them out, the default builds them when clang can.  The targets
# include mpi.h through log.h, so clang is driven by the Open MPI wrapper
# (OMPI_CC).  Sets FUZZ_CLANG and the conditional FUZZING.
AC_DEFUN([SHARDTUNE_CHECK_FUZZING], [
AC_ARG_ENABLE([fuzzing],
  [AS_HELP_STRING([--enable-fuzzing],
    [build the libFuzzer targets of tests/fuzz (default: when clang with libFuzzer is installed)])],
  [], [enable_fuzzing=auto])
FUZZ_CLANG=
AS_IF([test "x$enable_fuzzing" != xno], [
  AC_CHECK_PROGS([FUZZ_CLANG_CAND], [clang clang-14], [])
  AC_MSG_CHECKING([whether $FUZZ_CLANG_CAND links libFuzzer targets with ASan and UBSan])
  cat > conftest_fuzz.c <<'FUZZEOF'
#include <mpi.h>
int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { return d && n && MPI_VERSION < 0; }
FUZZEOF
  AS_IF([test -n "$FUZZ_CLANG_CAND" &&
         OMPI_CC="$FUZZ_CLANG_CAND" $MPICC -fsanitize=fuzzer,address,undefined conftest_fuzz.c \
           -o conftest_fuzz >&AS_MESSAGE_LOG_FD 2>&1],
        [FUZZ_CLANG="$FUZZ_CLANG_CAND"; AC_MSG_RESULT([yes])],
        [AC_MSG_RESULT([no])])
  rm -f conftest_fuzz.c conftest_fuzz
  AS_IF([test "x$enable_fuzzing" = xyes && test -z "$FUZZ_CLANG"],
        [AC_MSG_ERROR([--enable-fuzzing: clang cannot build libFuzzer targets: install the Debian packages clang-14 and libclang-rt-14-dev])])
])
AC_SUBST([FUZZ_CLANG])
AM_CONDITIONAL([FUZZING], [test -n "$FUZZ_CLANG"])
])
