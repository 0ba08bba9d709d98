#!/usr/bin/env bash
# Prints the secrets docker-compose.yml requires, each one random, as a .env file:
#
#   bash deploy/compose/secrets.sh > .env && docker compose up --build -d
#
# Compose reads .env from the project directory; keep it out of version control (it is ignored)
# and readable by you only. Running this again makes new secrets: the Kafka and PostgreSQL
# passwords are set when their volumes are first initialised, so drop the volumes
# (docker compose down -v) when you replace them.
set -euo pipefail
umask 077

secret() { head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'; }

# contracts.access.PRINCIPAL_NAMES, plus the broker's own controller user
# (tests/unit/test_compose.py keeps the two lists equal).
KAFKA_PRINCIPALS="admin orders orders-relay kitchen kitchen-relay notifications analytics analyst"

echo "# Made by deploy/compose/secrets.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ)."
echo "POSTGRES_PASSWORD=$(secret)"
for database in ORDERS KITCHEN NOTIFICATIONS ANALYTICS; do echo "${database}_DB_PASSWORD=$(secret)"; done
echo "AUTH_JWT_SECRET=$(secret)$(secret)"
echo "SIGN_IN_TOKEN=$(secret)"
echo "KAFKA_PASSWORD_CONTROLLER=$(secret)"
for principal in $KAFKA_PRINCIPALS; do
    echo "KAFKA_PASSWORD_$(echo "$principal" | tr 'a-z-' 'A-Z_')=$(secret)"
done
