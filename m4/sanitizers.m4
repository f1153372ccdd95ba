# SHARDTUNE_CHECK_SANITIZERS: --enable-sanitizers builds everything with
# AddressSanitizer (LeakSanitizer included) and UndefinedBehaviorSanitizer,
# frame pointers kept for readable stacks; an undefined behaviour stops the
# program.  Meant for a build directory of its own (tests/sanitize/run.sh:
# _build_san, CFLAGS=-O1).  Sets SANITIZE_CFLAGS.
AC_DEFUN([SHARDTUNE_CHECK_SANITIZERS], [
AC_ARG_ENABLE([sanitizers],
  [AS_HELP_STRING([--enable-sanitizers],
    [build with AddressSanitizer, LeakSanitizer and UndefinedBehaviorSanitizer (a build of its own: tests/sanitize/run.sh)])],
  [], [enable_sanitizers=no])
SANITIZE_CFLAGS=
AS_IF([test "x$enable_sanitizers" = xyes], [
  SANITIZE_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
  AC_MSG_CHECKING([whether $CC builds with $SANITIZE_CFLAGS])
  save_CFLAGS=$CFLAGS save_LDFLAGS=$LDFLAGS
  CFLAGS="$CFLAGS $SANITIZE_CFLAGS" LDFLAGS="$LDFLAGS $SANITIZE_CFLAGS"
  AC_LINK_IFELSE([AC_LANG_PROGRAM([], [])], [AC_MSG_RESULT([yes])],
    [AC_MSG_RESULT([no])
     AC_MSG_ERROR([--enable-sanitizers: $CC cannot build with $SANITIZE_CFLAGS (gcc needs libasan and libubsan: the Debian package gcc provides them)])])
  CFLAGS=$save_CFLAGS LDFLAGS=$save_LDFLAGS
])
AC_SUBST([SANITIZE_CFLAGS])
])
