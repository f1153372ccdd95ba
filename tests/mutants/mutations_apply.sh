#!/bin/sh
# Proves: the planted-bug list tests/mutants/mutations still plants what it
# says in this tree: every mutation's original text occurs exactly once in
# its file, and every test named to catch it is in this suite's TESTS.  So
# a change to the code or a renamed test cannot quietly turn a mutation into
# a no-op or a claim about a test that is gone.  (Whether the tests do catch
# the mutations is bench/mutants.sh's job: slow, recorded in doc/MUTANTS.md.)
# And the check can fail: a list with a missing text and a missing test is
# refused.
. "$top_srcdir/tests/lib.sh"

command -v python3 > /dev/null || fail "python3 (the system one is enough) is needed to read the list"
tool="$top_srcdir/tests/mutants/mutations.py"
python3 "$tool" check "$top_srcdir/tests/mutants/mutations" "$top_srcdir" "$top_builddir/Makefile" \
    || fail "tests/mutants/mutations no longer applies to this tree: fix the list with the change"

cat > "$SCRATCH/bad" <<'LIST'
[gone]
file:  src/optim.c
what:  text no longer in the file, catcher no longer a test
catch: tests/ref/no_such_test.sh
<<<
    this line is not in src/optim.c
===
>>>
LIST
python3 "$tool" check "$SCRATCH/bad" "$top_srcdir" "$top_builddir/Makefile" > "$SCRATCH/bad.out" 2>&1 \
    && fail "a list with a missing text and a missing test was accepted"
grep -q "occurs 0 times" "$SCRATCH/bad.out" && grep -q "no_such_test.sh is not in" "$SCRATCH/bad.out" \
    || { cat "$SCRATCH/bad.out"; fail "the refusal does not name both problems"; }
echo PASS
