# Faults injected on purpose: non-finite steps, a full disk during a save,
# stale locks, ranks killed, ranks that disagree.
TESTS += tests/faults/nonfinite_steps.sh tests/faults/disk_full.sh tests/faults/stale_lock.sh tests/faults/kill_rank.sh tests/faults/ranks_disagree.sh
EXTRA_DIST += tests/faults/nonfinite_steps.sh tests/faults/disk_full.sh tests/faults/stale_lock.sh tests/faults/kill_rank.sh tests/faults/ranks_disagree.sh tests/faults/ckpt_state.py tests/faults/kill_lib.sh
# The sanitizer build (ASan, LSan, UBSan) has its own script, run by CI
# beside make check: tests/sanitize/run.sh.
EXTRA_DIST += tests/sanitize/run.sh tests/sanitize/lsan.supp bench/faults.sh m4/sanitizers.m4
