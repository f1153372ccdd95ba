# tests/cli: the command line itself: suggestions for unknown flags and
# commands, --version, the man page.
TESTS += tests/cli/cli_help.sh
EXTRA_DIST += tests/cli/cli_help.sh
