# tests/cli: the command line itself: suggestions for unknown flags and
# commands, --version, the man page; the progress line of train.
TESTS += tests/cli/cli_help.sh tests/cli/progress_line.sh
EXTRA_DIST += tests/cli/cli_help.sh tests/cli/progress_line.sh
# doc/user-guide.md's troubleshooting table: each message produced by its command
TESTS += tests/cli/troubleshooting.sh
EXTRA_DIST += tests/cli/troubleshooting.sh
