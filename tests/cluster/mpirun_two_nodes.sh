#!/bin/sh
# Proves: 4 ranks on 2 emulated nodes (mpirun over TCP between network
# namespaces, tests/cluster/cluster_lib.sh) train as the same 4 ranks on one
# node do, for FULL_SHARD and HYBRID_SHARD (shard inside a node, replicate
# across): the same losses and grad norms at every step and the same
# adapter, bitwise.  The one-node HYBRID_SHARD run splits its 4 ranks into
# two "nodes" of 2 (SHARDTUNE_RANKS_PER_NODE), the groups the 2-node run
# finds.  It prints the bytes each node's interface sent and asserts that
# HYBRID_SHARD sends under a fifth of FULL_SHARD's between the nodes (only
# the adapter's gradients cross: the frozen weights are gathered inside the
# node).  The summary says the nodes MPI found, and an accelerate file whose
# num_machines disagrees gets a note saying it is not used.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/ckpt/ckpt_lib.sh"
. "$top_srcdir/tests/cluster/cluster_lib.sh"
export OMP_NUM_THREADS=1
cluster_up node1 node2
cluster_quickstart "$CLUSTER_DIR"
two="$(node_addr node1):2,$(node_addr node2):2" one="$(node_addr node1):4"
printf 'distributed_type: FSDP\nnum_machines: 1\nnum_processes: 4\n' > "$CLUSTER_DIR/one_machine.yaml"
for strategy in FULL_SHARD HYBRID_SHARD; do
    export FSDP_SHARDING_STRATEGY=$strategy
    [ $strategy = HYBRID_SHARD ] && export SHARDTUNE_RANKS_PER_NODE=2
    cluster_train $strategy.one "$one" 4 --max_steps 3
    unset SHARDTUNE_RANKS_PER_NODE
    before=$(( $(node_tx_bytes node1) + $(node_tx_bytes node2) ))
    # FULL_SHARD across the nodes also carries a file that says one machine
    extra=""
    [ $strategy = FULL_SHARD ] && extra="--config_file $CLUSTER_DIR/one_machine.yaml"
    cluster_train $strategy.two "$two" 4 --max_steps 3 $extra
    sent=$(( $(node_tx_bytes node1) + $(node_tx_bytes node2) - before ))
    eval "sent_$strategy=$sent"
    grep -q "shard group $([ $strategy = HYBRID_SHARD ] && echo 2 || echo 4)," "$CLUSTER_DIR/$strategy.two.log" ||
        fail "$strategy: not the expected shard group on 2 nodes"
    grep -q "4 rank(s) = 2 node(s) x 2," "$CLUSTER_DIR/$strategy.two.log" || fail "$strategy: the summary does not say 2 nodes x 2"
    same_curves 1 "$CLUSTER_DIR/$strategy.one" "$CLUSTER_DIR/$strategy.two" 0 || fail "$strategy: curves differ"
    cmp "$CLUSTER_DIR/$strategy.one/adapter_model.safetensors" "$CLUSTER_DIR/$strategy.two/adapter_model.safetensors" ||
        fail "$strategy: the adapters differ"
    echo "$strategy: 2 nodes x 2 ranks = 1 node x 4 ranks, bitwise; the nodes' interfaces sent $sent bytes"
done
grep -q "note: .*one_machine.yaml says num_machines 1 but MPI found 2 node(s).*not used" "$CLUSTER_DIR/FULL_SHARD.two.log" ||
    fail "no note that num_machines 1 disagrees with the 2 nodes MPI found"
grep -q "4 rank(s) = 1 node(s) x 4," "$CLUSTER_DIR/FULL_SHARD.one.log" || fail "the one-node summary does not say 1 node x 4"
[ $((sent_HYBRID_SHARD * 5)) -lt "$sent_FULL_SHARD" ] ||
    fail "HYBRID_SHARD sent $sent_HYBRID_SHARD bytes between the nodes, FULL_SHARD $sent_FULL_SHARD"
echo PASS
