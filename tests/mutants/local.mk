# tests/mutants: planted bugs.  tests/mutants/mutations lists small mistakes
# and the tests that must catch each; bench/mutants.sh plants them one by one
# in a copy of the tree and runs those tests (slow, by hand; doc/MUTANTS.md
# has its last run).  make check proves the list still applies, and runs the
# tests written for what the planted bugs found untested.
TESTS += tests/mutants/mutations_apply.sh tests/mutants/packed_assistant_labels.sh
EXTRA_DIST += tests/mutants/mutations_apply.sh tests/mutants/packed_assistant_labels.sh tests/mutants/mutations \
	tests/mutants/mutations.py bench/mutants.sh
