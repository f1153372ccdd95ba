# An emulated cluster (network namespaces, TCP between them, a real Slurm):
# multi-node runs, the batch scripts, pre-emption.  Root only; skips (77)
# elsewhere unless SHARDTUNE_REQUIRE_CLUSTER=1.
TESTS += tests/cluster/mpirun_two_nodes.sh tests/cluster/slurm_jobs.sh
EXTRA_DIST += tests/cluster/cluster_lib.sh tests/cluster/mpirun_two_nodes.sh tests/cluster/slurm_jobs.sh
