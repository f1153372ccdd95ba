# SHARDTUNE_CHECK_CUDA: optional CUDA toolkit (nvcc, cudart, cuBLAS, NCCL).
# --with-cuda[=DIR] asks for it (error if absent); --without-cuda turns it
# off; with neither, CUDA is used when nvcc is found on PATH or in DIR.
# Results: HAVE_CUDA (AM_CONDITIONAL and config.h), NVCC, CUDA_CPPFLAGS,
# CUDA_LDFLAGS, CUDA_LIBS, NVCC_GENCODE.
AC_DEFUN([SHARDTUNE_CHECK_CUDA], [
  AC_ARG_WITH([cuda],
    [AS_HELP_STRING([--with-cuda@<:@=DIR@:>@],
                    [build the CUDA backend (default: when nvcc is found)])],
    [], [with_cuda=check])
  have_cuda=no
  AS_CASE([$with_cuda],
    [no], [],
    [yes|check], [AC_PATH_PROG([NVCC], [nvcc], [], [$PATH:/usr/local/cuda/bin])],
    [AC_PATH_PROG([NVCC], [nvcc], [], [$with_cuda/bin])])
  AS_IF([test "x$with_cuda" != xno && test -n "$NVCC"], [
    cuda_home=`dirname "$NVCC"`
    cuda_home=`dirname "$cuda_home"`
    cuda_libdir="$cuda_home/lib64"
    AS_IF([test -d "$cuda_home/targets/x86_64-linux/lib"],
          [cuda_libdir="$cuda_home/targets/x86_64-linux/lib"])
    CUDA_CPPFLAGS="-I$cuda_home/include"
    CUDA_LDFLAGS="-L$cuda_libdir -Wl,-rpath,$cuda_libdir"
    save_CPPFLAGS="$CPPFLAGS"; save_LDFLAGS="$LDFLAGS"; save_LIBS="$LIBS"
    CPPFLAGS="$CPPFLAGS $CUDA_CPPFLAGS"; LDFLAGS="$LDFLAGS $CUDA_LDFLAGS"
    have_cuda=yes
    AC_CHECK_HEADERS([cuda_runtime.h cublas_v2.h nccl.h], [], [have_cuda=no])
    AC_CHECK_LIB([cudart], [cudaMalloc], [], [have_cuda=no])
    AC_CHECK_LIB([cublas], [cublasCreate_v2], [], [have_cuda=no])
    AC_CHECK_LIB([nccl], [ncclCommInitRank], [], [have_cuda=no])
    CPPFLAGS="$save_CPPFLAGS"; LDFLAGS="$save_LDFLAGS"; LIBS="$save_LIBS"
    CUDA_LIBS="-lcublasLt -lcublas -lnccl -lcudart -lstdc++"
  ])
  AS_IF([test "x$with_cuda" != xno && test "x$with_cuda" != xcheck && test "x$have_cuda" != xyes],
        [AC_MSG_ERROR([--with-cuda given but nvcc, cudart, cuBLAS or NCCL was not found (install the CUDA toolkit or pass --with-cuda=DIR)])])
  NVCC_GENCODE="-gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90"
  AS_IF([test "x$have_cuda" = xyes],
        [AC_DEFINE([HAVE_CUDA], [1], [Define to 1 when the CUDA backend is built.])])
  AC_SUBST([NVCC]) AC_SUBST([CUDA_CPPFLAGS]) AC_SUBST([CUDA_LDFLAGS])
  AC_SUBST([CUDA_LIBS]) AC_SUBST([NVCC_GENCODE])
  AM_CONDITIONAL([HAVE_CUDA], [test "x$have_cuda" = xyes])
])
