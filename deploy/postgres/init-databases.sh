#!/usr/bin/env bash
# One database per service (the same four deploy/local/stack.sh creates), each owned by a role of
# its own that nothing else shares: a service's role cannot even connect to another's database.
# The postgres image runs this once, as POSTGRES_USER, when it initialises an empty data
# directory; each service's `<service> migrate` then creates its tables as that role. Passwords:
# <SERVICE>_DB_PASSWORD (deploy/compose/secrets.sh makes them).
set -euo pipefail

DATABASES="orders kitchen notifications analytics"

for database in $DATABASES; do
    variable="$(echo "$database" | tr '[:lower:]' '[:upper:]')_DB_PASSWORD"
    password="${!variable:?$variable is not set (deploy/compose/secrets.sh)}"
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        -v role="$database" -v password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"role" OWNER :"role";
REVOKE ALL ON DATABASE :"role" FROM PUBLIC;
SQL
done
