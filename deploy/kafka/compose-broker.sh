#!/usr/bin/env bash
# A broker of docker-compose.yml: the local stack's configuration (server.properties.template),
# rendered for the container's network, storage formatted on first start with a SCRAM-SHA-512
# user per principal of contracts.access, then Kafka itself (exec: it is PID 1's child and gets
# the signals).
#
# One node by default. Given KAFKA_CONTROLLER_QUORUM_VOTERS ("1@kafka-1:9093,2@kafka-2:9093,...",
# every node's id and controller address), it is node KAFKA_NODE_ID of that cluster, configured as
# deploy/local/stack.sh configures a node of KAFKA_BROKERS=3: a static quorum of the voters, as
# many copies of each partition as there are nodes, two in sync for a write. Every node of a
# cluster must be given the same voters, the same passwords and the same KAFKA_CLUSTER_ID.
#
# Passwords come from the environment, KAFKA_PASSWORD_<PRINCIPAL> (dashes as underscores, e.g.
# KAFKA_PASSWORD_ORDERS_RELAY), plus KAFKA_PASSWORD_CONTROLLER for the controller listener;
# deploy/compose/secrets.sh makes them. A principal's password is set when the storage is
# formatted: to change one later, drop the volumes or use kafka-configs --alter --add-config.
#
# Where the container's paths and ports are not (tests/integration/test_compose_cluster.py runs
# three nodes on this machine), KAFKA_HOME, KAFKA_TEMPLATE, KAFKA_CONFIG_FILE, KAFKA_DATA_DIR,
# KAFKA_PORT, KAFKA_CONTROLLER_PORT, KAFKA_LISTEN_HOST and KAFKA_ADVERTISED_HOST move them.
#
#   compose-broker.sh [--render-only FILE]   (the tests render the configuration this way)
set -euo pipefail

KAFKA_HOME="${KAFKA_HOME:-/opt/kafka}"  # the apache/kafka image's distribution
TEMPLATE="${KAFKA_TEMPLATE:-/opt/pizzeria/server.properties.template}"
CONFIG="${KAFKA_CONFIG_FILE:-/tmp/server.properties}"  # in the container, its own
DATA_DIR="${KAFKA_DATA_DIR:-/var/lib/kafka/data}"
PORT="${KAFKA_PORT:-9092}"
CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
LISTEN_HOST="${KAFKA_LISTEN_HOST:-0.0.0.0}"
ADVERTISED_HOST="${KAFKA_ADVERTISED_HOST:-kafka}"  # the name the clients reach this node by
NODE_ID="${KAFKA_NODE_ID:-1}"
VOTERS="${KAFKA_CONTROLLER_QUORUM_VOTERS:-}"
PRINCIPALS="${KAFKA_PRINCIPALS:?the principals of contracts.access, space separated}"
CLUSTER_ID="${KAFKA_CLUSTER_ID:-j_R7N-23Vx2O61TvY4OcsQ}"  # any 16 bytes, base64url

die() { echo "compose-broker: $*" >&2; exit 78; }

password() {
    local name="KAFKA_PASSWORD_$(echo "$1" | tr 'a-z-' 'A-Z_')"
    [ -n "${!name:-}" ] || die "$name is not set (deploy/compose/secrets.sh)"
    printf '%s' "${!name}"
}

# A typo in the voters would otherwise surface as a node waiting for ever for a quorum.
check_voters() {
    local voter voters ids=() own=""
    [[ "$NODE_ID" =~ ^[0-9]+$ ]] || die "KAFKA_NODE_ID must be a number, not '$NODE_ID'"
    IFS=, read -ra voters <<<"$VOTERS"
    for voter in "${voters[@]}"; do
        [[ "$voter" =~ ^([0-9]+)@[^:@]+:[0-9]+$ ]] || die "voter '$voter' is not ID@HOST:PORT"
        ids+=("${BASH_REMATCH[1]}")
        [ "${BASH_REMATCH[1]}" = "$NODE_ID" ] && own=yes
    done
    [ -n "$own" ] || die "node $NODE_ID is not among the voters $VOTERS"
    [ "$(printf '%s\n' "${ids[@]}" | sort -u | wc -l)" -eq "${#ids[@]}" ] || die "two voters share an id: $VOTERS"
    NODES="${#ids[@]}"
}

render() {
    (umask 077; sed -e "s|@KAFKA_PORT@|$PORT|g" -e "s|@CONTROLLER_PORT@|$CONTROLLER_PORT|g" \
        -e "s|@DATA_DIR@|$DATA_DIR|g" -e "s|@BROKER_PROTOCOL@|SASL_PLAINTEXT|g" \
        -e "s|@LISTEN_HOST@|$LISTEN_HOST|g" -e "s|@ADVERTISED_HOST@|$ADVERTISED_HOST|g" \
        -e "s|@ADMIN_PASSWORD@|$(password admin)|g" -e "s|@CONTROLLER_PASSWORD@|$(password controller)|g" \
        "$TEMPLATE" >"$1")
    [ -n "$VOTERS" ] || return 0
    # stack.sh's cluster settings (render_kafka_config; tests/unit/test_compose.py keeps the two
    # alike). The controller listens beyond the container too: the other voters connect to it,
    # with the controller's password (SASL PLAIN), as the brokers do.
    local replication="$NODES" insync=$(( NODES > 1 ? 2 : 1 ))
    sed -i -e "s|^node.id=.*|node.id=$NODE_ID|" \
        -e "s|^# One node: every replication factor is 1.|# $NODES nodes: $replication copies, $insync in sync for a write.|" \
        -e "s|^controller.quorum.bootstrap.servers=.*|controller.quorum.voters=$VOTERS|" \
        -e "s|^\(listeners=.*,CONTROLLER://\)127.0.0.1:|\1$LISTEN_HOST:|" \
        -e "s|^\(offsets.topic.replication.factor\)=.*|\1=$replication|" \
        -e "s|^\(transaction.state.log.replication.factor\)=.*|\1=$replication|" \
        -e "s|^\(share.coordinator.state.topic.replication.factor\)=.*|\1=$replication|" \
        -e "s|^\(default.replication.factor\)=.*|\1=$replication|" \
        -e "s|^\(transaction.state.log.min.isr\)=.*|\1=$insync|" \
        -e "s|^\(share.coordinator.state.topic.min.isr\)=.*|\1=$insync|" \
        -e "s|^\(min.insync.replicas\)=.*|\1=$insync|" \
        "$1"
    # A broker back from a crash gets its partitions' leadership back within 20 s (the
    # preferred-leader election; Kafka checks every 300 s by default).
    echo "leader.imbalance.check.interval.seconds=20" >>"$1"
}

[ -z "$VOTERS" ] || check_voters

if [ "${1:-}" = "--render-only" ]; then render "$2"; exit 0; fi

mkdir -p "$DATA_DIR"
render "$CONFIG"
if [ ! -f "$DATA_DIR/meta.properties" ]; then
    scram=() quorum=()
    for name in $PRINCIPALS; do
        scram+=(--add-scram "SCRAM-SHA-512=[name=$name,password=$(password "$name")]")
    done
    [ -n "$VOTERS" ] || quorum=(--standalone)  # a cluster's voters are in its configuration
    "$KAFKA_HOME/bin/kafka-storage.sh" format "${quorum[@]}" --cluster-id "$CLUSTER_ID" -c "$CONFIG" "${scram[@]}"
fi
exec "$KAFKA_HOME/bin/kafka-server-start.sh" "$CONFIG"
