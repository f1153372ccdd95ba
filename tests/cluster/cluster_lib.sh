# tests/cluster/cluster_lib.sh: sourced after tests/lib.sh.  An emulated
# cluster on one machine, started and stopped by the test that uses it:
# - one network namespace per node (head, node1..node3) and one for the
#   switch, a bridge; each node's eth0 is a veth port on it, in the private
#   10.77.0.0/24 that exists only inside these namespaces (no route out);
# - processes enter a node with nsenter (the network namespace only: `ip
#   netns exec` would remount /sys without the cgroup hierarchies slurmd
#   needs) and unshare (their own hostname);
# - mpirun runs in node1; Open MPI starts its daemons on other nodes through
#   cluster_rsh, which enters the node as ssh would (a clean environment);
# - cluster_slurm_up: munge, slurmctld in head, one slurmd per node.
# Everything started is recorded by pid and stopped by cluster_down, which
# the EXIT trap runs even when a test fails; the namespaces (with their
# veths and bridge) are deleted: nothing stays behind.  Without root or
# network namespaces the test skips (77), unless SHARDTUNE_REQUIRE_CLUSTER=1.
CLUSTER_NET=10.77.0
CLUSTER_DIR="$SCRATCH/cluster"          # every node's shared disk
CLUSTER_PFX="st$$"                     # namespace names of this test only
CLUSTER_PIDS=""
CLUSTER_NS=""
mkdir -p "$CLUSTER_DIR"

cluster_skip() {
    [ "${SHARDTUNE_REQUIRE_CLUSTER:-0}" = 1 ] && fail "$* (SHARDTUNE_REQUIRE_CLUSTER=1)"
    echo "SKIP: $*"
    exit 77
}

# node_addr NODE: its address (head .10, nodeK .1K)
node_addr() { case $1 in head) echo "$CLUSTER_NET.10" ;; node*) echo "$CLUSTER_NET.1${1#node}" ;; esac; }
node_of_addr() { case $1 in "$CLUSTER_NET.10") echo head ;; "$CLUSTER_NET.1"?) echo "node${1#"$CLUSTER_NET.1"}" ;; *) echo "$1" ;; esac; }

# on_node NODE CMD...: CMD in NODE's network, with NODE as its hostname
on_node() {
    _n=$1
    shift
    nsenter --net="/run/netns/$CLUSTER_PFX-$_n" unshare --uts sh -c 'hostname "$0"; exec "$@"' "$_n" "$@"
}

cluster_down() {
    for _p in $CLUSTER_PIDS; do kill -TERM "$_p" 2>/dev/null || true; done
    for _p in $CLUSTER_PIDS; do
        _i=0
        while kill -0 "$_p" 2>/dev/null && [ $_i -lt 50 ]; do sleep 0.1; _i=$((_i + 1)); done
        kill -KILL "$_p" 2>/dev/null || true
    done
    # what the daemons started inside the nodes (job steps, ranks, orted)
    for _ns in $CLUSTER_NS; do
        for _p in $(ip netns pids "$_ns" 2>/dev/null); do kill -KILL "$_p" 2>/dev/null || true; done
    done
    for _ns in $CLUSTER_NS; do ip netns del "$_ns" 2>/dev/null || true; done
    CLUSTER_PIDS="" CLUSTER_NS=""
}
trap 'cluster_down; rm -rf "$SCRATCH"' EXIT
trap 'exit 1' INT TERM

# cluster_up NODES...: the namespaces and the switch (e.g. cluster_up head node1 node2)
cluster_up() {
    [ "$(id -u)" = 0 ] || cluster_skip "the emulated cluster needs root"
    for _t in ip nsenter unshare; do command -v $_t >/dev/null 2>&1 || cluster_skip "$_t is not on PATH"; done
    ip netns add "$CLUSTER_PFX-sw" 2>/dev/null || cluster_skip "cannot create a network namespace"
    CLUSTER_NS="$CLUSTER_PFX-sw"
    ip -n "$CLUSTER_PFX-sw" link add br0 type bridge
    ip -n "$CLUSTER_PFX-sw" link set br0 up
    for _n in "$@"; do
        _ns="$CLUSTER_PFX-$_n"
        ip netns add "$_ns"
        CLUSTER_NS="$CLUSTER_NS $_ns"
        ip -n "$_ns" link add eth0 type veth peer name "p-$_n" netns "$CLUSTER_PFX-sw"
        ip -n "$CLUSTER_PFX-sw" link set "p-$_n" master br0 up
        ip -n "$_ns" addr add "$(node_addr "$_n")/24" dev eth0
        ip -n "$_ns" link set eth0 up
        ip -n "$_ns" link set lo up
    done
    # the rsh agent Open MPI uses to start its daemon on another node: like
    # ssh, a clean environment (what ranks need travels with mpirun -x)
    cat > "$CLUSTER_DIR/rsh" <<RSH
#!/bin/sh
# cluster_rsh HOST COMMAND...: COMMAND on the emulated node HOST
host=\$1
shift
case \$host in $CLUSTER_NET.10) n=head ;; $CLUSTER_NET.1?) n=node\${host#$CLUSTER_NET.1} ;; *) n=\$host ;; esac
exec env -i PATH="$PATH" HOME="\$HOME" nsenter --net=/run/netns/$CLUSTER_PFX-\$n unshare --uts \\
    sh -c 'hostname "\$0"; exec sh -c "\$*"' "\$n" "\$@"
RSH
    chmod +x "$CLUSTER_DIR/rsh"
}

# node_tx_bytes NODE: bytes NODE's eth0 has sent (its own /proc/net/dev)
node_tx_bytes() {
    nsenter --net="/run/netns/$CLUSTER_PFX-$1" cat /proc/net/dev | awk '$1 == "eth0:" { print $10 }'
}

# cluster_mpirun_args: what mpirun needs across the emulated nodes: TCP only
# and on the private /24; ranks that yield (every node believes it owns all
# cores); the daemons started through the rsh agent; the variables ranks
# need exported (a clean remote environment would drop them; oneDNN's ISA
# cap and SHARDTUNE_CPU_BF16 choose the kernels, so the last bits of the
# losses; the OPENBLAS_* settings of this environment go along unchanged)
cluster_mpirun_args() {
    echo "--mca btl tcp,self --mca btl_tcp_if_include $CLUSTER_NET.0/24 --mca oob_tcp_if_include $CLUSTER_NET.0/24" \
        "--mca mpi_yield_when_idle 1 --mca plm_rsh_agent $CLUSTER_DIR/rsh"
    for _v in PATH LD_LIBRARY_PATH OMP_NUM_THREADS OPENBLAS_CORETYPE OPENBLAS_L2_SIZE ONEDNN_MAX_CPU_ISA DNNL_MAX_CPU_ISA \
        SHARDTUNE_CPU_BF16 SHARDTUNE_DEVICE \
        OMPI_MCA_rmaps_base_oversubscribe FSDP_SHARDING_STRATEGY SHARDTUNE_RANKS_PER_NODE; do
        eval "[ -n \"\${$_v+set}\" ]" && echo "-x $_v"
    done
    return 0
}

# cluster_quickstart DIR: the quick-start job's model and data (jobs/quickstart.sh:
# the shipped stories260K and UltraChat sample) into QS_MODEL=DIR/model and
# QS_DATA=DIR/chat; QS_FLAGS: its other training flags, one row per rank
cluster_quickstart() {
    "$SHARDTUNE" convert llama2c --checkpoint "$ASSETS/model/stories260K.bin" --tokenizer "$ASSETS/model/tok512.bin" \
        --out "$1/model" > /dev/null
    mkdir -p "$1/chat"
    head -n 14 "$ASSETS/data/ultrachat_200k_sample16.jsonl" > "$1/chat/train.jsonl"
    tail -n 2 "$ASSETS/data/ultrachat_200k_sample16.jsonl" > "$1/chat/test.jsonl"
    QS_MODEL=$1/model QS_DATA=$1/chat
    QS_FLAGS="--splits train,test --chat_template_format chatml
        --packing True --dataset_text_field content --add_special_tokens False --append_concat_token False
        --max_seq_len 256 --per_device_train_batch_size 1 --learning_rate 5e-3 --lr_scheduler_type cosine
        --warmup_ratio 0.1 --logging_steps 1 --lora_r 8 --lora_alpha 16 --lora_dropout 0.05
        --lora_target_modules all-linear --seed 42 --disable_tqdm True"
}

# cluster_train NAME HOSTS NP [flags]: the quick-start training on NP ranks
# from node1 over HOSTS (mpirun -H), into $CLUSTER_DIR/NAME (log NAME.log)
cluster_train() {
    _name=$1 _hosts=$2 _np=$3
    shift 3
    on_node node1 timeout 300 "$MPIRUN" $(cluster_mpirun_args) -H "$_hosts" -np "$_np" "$SHARDTUNE" train --model_name_or_path "$QS_MODEL" --dataset_name "$QS_DATA" $QS_FLAGS \
        --output_dir "$CLUSTER_DIR/$_name" "$@" > "$CLUSTER_DIR/$_name.log" 2>&1 ||
        { cat "$CLUSTER_DIR/$_name.log" >&2; fail "$_name: training on $_hosts failed"; }
}

# cluster_slurm_up NODES...: munge (one key, one socket on the shared disk),
# slurmctld in head and a slurmd in each node, with CPUs=2 each; waits until
# the nodes are idle.  Clients run in a node with SLURM_CONF set (exported).
cluster_slurm_up() {
    for _t in munged slurmctld slurmd sbatch scontrol; do
        command -v $_t >/dev/null 2>&1 || [ -x "/usr/sbin/$_t" ] || cluster_skip "$_t is not installed (slurm-wlm, munge)"
    done
    _d="$CLUSTER_DIR/slurm"
    mkdir -p "$_d/state" "$_d/munge"
    chmod 700 "$_d/munge"
    dd if=/dev/urandom of="$_d/munge/key" bs=1024 count=1 2>/dev/null
    chmod 400 "$_d/munge/key"
    /usr/sbin/munged --foreground --force --socket="$_d/munge/sock" --key-file="$_d/munge/key" \
        --pid-file="$_d/munge/pid" --log-file="$_d/munge/log" --seed-file="$_d/munge/seed" > "$_d/munged.out" 2>&1 &
    CLUSTER_PIDS="$CLUSTER_PIDS $!"
    _nodes=""
    for _n in "$@"; do
        mkdir -p "$_d/spool/$_n" "$_d/tmp/$_n"
        _nodes="$_nodes
NodeName=$_n NodeAddr=$(node_addr "$_n") CPUs=2 RealMemory=1000 State=UNKNOWN"
    done
    _list=$(echo "$@" | tr ' ' ',')
    # cred_expire: a requeued job waits that long before it starts again
    # (120 s by default); TmpFS per node: PMIx's per-step directories
    # would collide on the one /tmp the nodes share
    cat > "$_d/slurm.conf" <<CONF
ClusterName=shardtune-test
SlurmctldHost=head($(node_addr head))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$_d/munge/sock,cred_expire=5
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$_d/state
SlurmdSpoolDir=$_d/spool/%n
SlurmctldPidFile=$_d/slurmctld.pid
SlurmdPidFile=$_d/slurmd.%n.pid
SlurmctldLogFile=$_d/slurmctld.log
SlurmdLogFile=$_d/slurmd.%n.log
TmpFS=$_d/tmp/%n
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
MpiDefault=none
KillWait=30
MinJobAge=600
MailProg=/bin/true
$_nodes
PartitionName=test Nodes=$_list Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
    export SLURM_CONF="$_d/slurm.conf"
    on_node head /usr/sbin/slurmctld -D -i -f "$SLURM_CONF" > "$_d/slurmctld.out" 2>&1 &
    CLUSTER_PIDS="$CLUSTER_PIDS $!"
    for _n in "$@"; do
        on_node "$_n" /usr/sbin/slurmd -D -N "$_n" -f "$SLURM_CONF" > "$_d/slurmd.$_n.out" 2>&1 &
        CLUSTER_PIDS="$CLUSTER_PIDS $!"
    done
    _i=0
    until [ "$(on_node head sinfo -h -o %T -t idle 2>/dev/null | grep -c idle || true)" -ge 1 ] &&
        [ "$(on_node head sinfo -h -N -t idle -o %N 2>/dev/null | wc -l)" -eq $# ]; do
        _i=$((_i + 1))
        [ $_i -lt 100 ] || { cat "$_d"/*.log "$_d"/*.out >&2; fail "Slurm did not come up"; }
        sleep 0.2
    done
}

# slurm_wait JOBID STATE...: until the job's state is one of STATE (120 s at most)
slurm_wait() {
    _j=$1
    shift
    _i=0
    while :; do
        _s=$(on_node head squeue -h -j "$_j" -t all -o %T 2>/dev/null || true)
        for _w in "$@"; do [ "$_s" = "$_w" ] && return 0; done
        _i=$((_i + 1))
        [ $_i -lt 600 ] || fail "job $_j: still $_s after 120 s"
        sleep 0.2
    done
}
