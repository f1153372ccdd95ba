# Checkpoints: resume at any world size, crash safety, refusal of bad files,
# the layout as h5py reads it.
TESTS += tests/ckpt/resume_equivalence.sh tests/ckpt/kill_during_save.sh tests/ckpt/bad_checkpoint.sh \
	tests/ckpt/h5py_layout.sh
EXTRA_DIST += tests/ckpt/ckpt_lib.sh tests/ckpt/resume_equivalence.sh tests/ckpt/kill_during_save.sh \
	tests/ckpt/bad_checkpoint.sh tests/ckpt/h5py_layout.sh
TESTS += tests/ckpt/resume_4bit_dora.sh
EXTRA_DIST += tests/ckpt/resume_4bit_dora.sh
# Pre-emption: signals and the time limit stop the run with a checkpoint
# that holds every step done (exit status 75)
TESTS += tests/ckpt/preempt_signal.sh
EXTRA_DIST += tests/ckpt/preempt_signal.sh
