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
# node).
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/ckpt/ckpt_lib.sh"
. "$top_srcdir/tests/cluster/cluster_lib.sh"
export OMP_NUM_THREADS=1
cluster_up node1 node2
cluster_quickstart "$CLUSTER_DIR"
two="$(node_addr node1):2,$(node_addr node2):2" one="$(node_addr node1):4"
for strategy in FULL_SHARD HYBRID_SHARD; do
    export FSDP_SHARDING_STRATEGY=$strategy
    [ $strategy = HYBRID_SHARD ] && export SHARDTUNE_RANKS_PER_NODE=2
    cluster_train $strategy.one "$one" 4 --max_steps 3
    unset SHARDTUNE_RANKS_PER_NODE
    before=$(( $(node_tx_bytes node1) + $(node_tx_bytes node2) ))
    cluster_train $strategy.two "$two" 4 --max_steps 3
    sent=$(( $(node_tx_bytes node1) + $(node_tx_bytes node2) - before ))
    eval "sent_$strategy=$sent"
    grep -q "shard group $([ $strategy = HYBRID_SHARD ] && echo 2 || echo 4)," "$CLUSTER_DIR/$strategy.two.log" ||
        fail "$strategy: not the expected shard group on 2 nodes"
    same_curves 1 "$CLUSTER_DIR/$strategy.one" "$CLUSTER_DIR/$strategy.two" 0 || fail "$strategy: curves differ"
    cmp "$CLUSTER_DIR/$strategy.one/adapter_model.safetensors" "$CLUSTER_DIR/$strategy.two/adapter_model.safetensors" ||
        fail "$strategy: the adapters differ"
    echo "$strategy: 2 nodes x 2 ranks = 1 node x 4 ranks, bitwise; the nodes' interfaces sent $sent bytes"
done
[ $((sent_HYBRID_SHARD * 5)) -lt "$sent_FULL_SHARD" ] ||
    fail "HYBRID_SHARD sent $sent_HYBRID_SHARD bytes between the nodes, FULL_SHARD $sent_FULL_SHARD"
echo PASS
