#!/usr/bin/env bash
# The broker of docker-compose.yml: the local stack's configuration (server.properties.template),
# rendered for the container's network, storage formatted on first start with a SCRAM-SHA-512
# user per principal of contracts.access, then Kafka itself (exec: it is PID 1's child and gets
# the signals).
#
# Passwords come from the environment, KAFKA_PASSWORD_<PRINCIPAL> (dashes as underscores, e.g.
# KAFKA_PASSWORD_ORDERS_RELAY), plus KAFKA_PASSWORD_CONTROLLER for the controller listener;
# deploy/compose/secrets.sh makes them. A principal's password is set when the storage is
# formatted: to change one later, drop the volume or use kafka-configs --alter --add-config.
#
#   compose-broker.sh [--render-only FILE]   (the tests render the configuration this way)
set -euo pipefail

TEMPLATE="${KAFKA_TEMPLATE:-/opt/pizzeria/server.properties.template}"
CONFIG="${KAFKA_CONFIG_FILE:-/tmp/server.properties}"  # in the container, its own
DATA_DIR="${KAFKA_DATA_DIR:-/var/lib/kafka/data}"
PRINCIPALS="${KAFKA_PRINCIPALS:?the principals of contracts.access, space separated}"
CLUSTER_ID="${KAFKA_CLUSTER_ID:-j_R7N-23Vx2O61TvY4OcsQ}"  # any 16 bytes, base64url

password() {
    local name="KAFKA_PASSWORD_$(echo "$1" | tr 'a-z-' 'A-Z_')"
    [ -n "${!name:-}" ] || { echo "compose-broker: $name is not set (deploy/compose/secrets.sh)" >&2; exit 78; }
    printf '%s' "${!name}"
}

render() {
    (umask 077; sed -e "s|@KAFKA_PORT@|9092|g" -e "s|@CONTROLLER_PORT@|9093|g" \
        -e "s|@DATA_DIR@|$DATA_DIR|g" -e "s|@BROKER_PROTOCOL@|SASL_PLAINTEXT|g" \
        -e "s|@LISTEN_HOST@|0.0.0.0|g" -e "s|@ADVERTISED_HOST@|kafka|g" \
        -e "s|@ADMIN_PASSWORD@|$(password admin)|g" -e "s|@CONTROLLER_PASSWORD@|$(password controller)|g" \
        "$TEMPLATE" >"$1")
}

if [ "${1:-}" = "--render-only" ]; then render "$2"; exit 0; fi

mkdir -p "$DATA_DIR"
render "$CONFIG"
if [ ! -f "$DATA_DIR/meta.properties" ]; then
    scram=()
    for name in $PRINCIPALS; do
        scram+=(--add-scram "SCRAM-SHA-512=[name=$name,password=$(password "$name")]")
    done
    /opt/kafka/bin/kafka-storage.sh format --standalone --cluster-id "$CLUSTER_ID" -c "$CONFIG" "${scram[@]}"
fi
exec /opt/kafka/bin/kafka-server-start.sh "$CONFIG"
