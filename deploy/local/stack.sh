#!/usr/bin/env bash
# The local stack without Docker: PostgreSQL from the machine's server binaries, the real Kafka
# broker (KRaft; one node, or three with KAFKA_BROKERS=3) from Maven Central jars, and every
# service of the system.
#
#   stack.sh install        install what is missing (postgres, java, maven, uv, python env, kafka jars,
#                           chromium for the browser tests, helm and the npm validators for the
#                           chart's tests)
#   stack.sh python-env     only uv and the Python environment (what `make lint` and `make test-unit`
#                           need)
#   stack.sh infra-up       start postgres and kafka, create databases and topics, wait until healthy
#   stack.sh infra-down     stop kafka and postgres
#   stack.sh up             infra-up, migrate, start every service in the background, write stack.env
#   stack.sh down           stop services, then infra; leaves nothing listening
#   stack.sh run            up, print the URLs, stream the logs, and stop everything on Ctrl-C
#   stack.sh kafka-start | kafka-stop | kafka-kill [NODE] | pg-start | pg-stop | pg-kill   (fault
#                           tests; a Kafka command acts on every node, or on NODE of a cluster)
#   stack.sh kafka-env PRINCIPAL   print the exports that make a shell that Kafka principal
#   stack.sh kafka-tool TOOL ARGS...   one of Kafka's own tools (its bin/kafka-TOOL.sh):
#                           reassign-partitions, leader-election, topics, consumer-groups, acls,
#                           configs or metadata-quorum, against the stack's brokers as admin
#   stack.sh toxiproxy-up | toxiproxy-down   the fault proxy make chaos puts between services and
#                           PostgreSQL / Kafka
#   stack.sh scale PROCESS N   run N processes of a service or relay of the `up` stack (its own,
#                           plus PROCESS-2 ... PROCESS-N, each on its port + 100 per instance)
#   stack.sh status
#
# The broker authenticates every client (SASL/SCRAM, one principal per process, ACLs from
# contracts.access) and each service has a database role of its own; the passwords are made on
# first start and kept under $STACK_DIR, readable by their owner only (docs/operations.md: Security).
# Everything lives under $STACK_DIR (default .local/stack): data, logs, pid files, stack.env.
# Ports and the directory are environment variables, so tests run a second stack beside `make up`.
# PG_EXTRA_OPTIONS adds server settings (the benchmarks turn on track_commit_timestamp).
# Listening ports stay below 32768, out of Linux's ephemeral range: a busy client could otherwise
# hold the broker's port as the local end of a connection, and a restart would fail to bind.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STACK_DIR="${STACK_DIR:-$ROOT/.local/stack}"
PG_PORT="${PG_PORT:-15432}"
KAFKA_PORT="${KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-19093}"
ORDERS_PORT="${ORDERS_PORT:-8001}"
KITCHEN_PORT="${KITCHEN_PORT:-8002}"
NOTIFICATIONS_PORT="${NOTIFICATIONS_PORT:-8003}"
ANALYTICS_PORT="${ANALYTICS_PORT:-8004}"
ORDERS_RELAY_METRICS_PORT="${ORDERS_RELAY_METRICS_PORT:-9101}"
KITCHEN_RELAY_METRICS_PORT="${KITCHEN_RELAY_METRICS_PORT:-9102}"
# Dev sinks of the notifications service: an SMTP server and a Twilio-style SMS API.
SMTP_SINK_PORT="${SMTP_SINK_PORT:-2525}"
SMS_SINK_PORT="${SMS_SINK_PORT:-8025}"
PG_USER=pizzeria
PG_PASSWORD="${PG_PASSWORD:-pizzeria}"
DATABASES=(orders kitchen notifications analytics)
KAFKA_HEAP="${KAFKA_HEAP:--Xms256m -Xmx768m}"
LOG_FORMAT="${LOG_FORMAT:-json}"

KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$ROOT/deploy/kafka/pom.xml")"
# The jar cache is named after the POM's content: editing the POM resolves again, nothing else does.
POM_HASH="$(sha256sum "$ROOT/deploy/kafka/pom.xml" | cut -c1-10)"
KAFKA_LIBS="${KAFKA_LIBS:-$ROOT/.local/kafka-$KAFKA_VERSION-$POM_HASH/libs}"
PG_BIN="${PG_BIN:-}"
LOG_DIR="$STACK_DIR/logs"
PID_DIR="$STACK_DIR/pids"
# The project's environment's interpreter: `uv run` in front of every process would cost a second
# process each, and one more hop for every signal.
PYTHON="${UV_PROJECT_ENVIRONMENT:-$ROOT/.venv}/bin/python"

log() { printf '\033[1;34m[stack]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[stack] %s\033[0m\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" = 0 ]; }

# ---------------------------------------------------------------- install
apt_install() {
    is_root || die "missing: $* — install it (Debian: apt-get install $*) or run as root"
    log "installing $* with apt-get"
    if [ ! -f "$STACK_DIR/.apt-updated" ]; then
        mkdir -p "$STACK_DIR"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq && touch "$STACK_DIR/.apt-updated"
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

find_pg_bin() {
    if [ -n "$PG_BIN" ] && [ -x "$PG_BIN/postgres" ]; then return 0; fi
    local candidate
    for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$candidate/postgres" ] && [ -x "$candidate/initdb" ]; then PG_BIN="$candidate"; return 0; fi
    done
    return 1
}

install_postgres() {
    find_pg_bin || { apt_install postgresql postgresql-contrib; find_pg_bin || die "postgres binaries not found after install"; }
}

install_java() {
    command -v java >/dev/null || apt_install openjdk-17-jre-headless
    command -v mvn >/dev/null || apt_install maven
}

install_kafka() {
    if [ -f "$KAFKA_LIBS/.complete" ]; then return 0; fi
    install_java
    log "resolving Kafka $KAFKA_VERSION jars from Maven Central (once; cached in $KAFKA_LIBS)"
    rm -rf "$KAFKA_LIBS"
    mkdir -p "$KAFKA_LIBS"
    mvn -q -B -f "$ROOT/deploy/kafka/pom.xml" dependency:copy-dependencies \
        -DoutputDirectory="$KAFKA_LIBS" -DincludeScope=runtime >"$ROOT/.local/kafka-mvn.log" 2>&1 \
        || { tail -n 30 "$ROOT/.local/kafka-mvn.log" >&2; die "maven could not resolve the Kafka jars"; }
    touch "$KAFKA_LIBS/.complete"
}

install_python() {
    if ! command -v uv >/dev/null; then
        log "installing uv"
        # Debian's own python3 refuses pip installs outside a venv (PEP 668); uv is a standalone
        # binary, so installing it beside the system packages is harmless.
        python3 -m pip install -q "uv==0.13.9" 2>/dev/null \
            || python3 -m pip install -q --break-system-packages "uv==0.13.9" \
            || die "could not install uv (pip install uv)"
    fi
    (cd "$ROOT" && uv sync --frozen -q) || die "uv sync failed"
}

# The browser tests (tests/e2e/test_kitchen_display.py) drive Debian's Chromium through
# Playwright; Playwright's own browser download is never used.
# Only the tests need it, so a normal user without it still gets a running stack, with a warning.
install_browser() {
    [ -x /usr/bin/chromium ] && return 0
    if is_root; then apt_install chromium; else
        log "warning: /usr/bin/chromium is missing, so the browser tests will fail (Debian: apt-get install chromium)"
    fi
}

# Helm, built from the Go module proxy at a pinned version: the tests render the chart in
# deploy/helm/ with it (no cluster is needed for `helm template`).
HELM_VERSION=v4.3.2
HELM_BIN="$ROOT/.local/helm-$HELM_VERSION/helm"

install_helm() {
    [ -x "$HELM_BIN" ] && return 0
    command -v go >/dev/null || apt_install golang-go
    log "building Helm $HELM_VERSION from the Go module proxy (once; a few minutes)"
    mkdir -p "$(dirname "$HELM_BIN")"
    GOBIN="$(dirname "$HELM_BIN")" GOFLAGS=-mod=mod go install "helm.sh/helm/v4/cmd/helm@$HELM_VERSION" \
        >"$ROOT/.local/helm-build.log" 2>&1 \
        || { tail -n 20 "$ROOT/.local/helm-build.log" >&2; die "could not build Helm"; }
}

# The npm registry's validators the tests run (tests/node/package.json, locked).
install_node_tools() {
    command -v npm >/dev/null || apt_install npm
    local lock="$ROOT/tests/node/package-lock.json" stamp="$ROOT/tests/node/node_modules/.installed"
    [ -f "$stamp" ] && [ "$stamp" -nt "$lock" ] && return 0
    log "installing the tests' npm tools (tests/node)"
    (cd "$ROOT/tests/node" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed in tests/node"
    touch "$stamp"
}

cmd_install() {
    mkdir -p "$ROOT/.local"
    install_python
    install_postgres
    install_kafka
    install_browser
    install_helm
    install_node_tools
}

# ---------------------------------------------------------------- helpers
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pid_alive() { [ -f "$PID_DIR/$1.pid" ] && kill -0 "$(cat "$PID_DIR/$1.pid")" 2>/dev/null; }

# Start a command as its own process group, with output in logs/<name>.log.
spawn() {
    local name="$1"; shift
    mkdir -p "$LOG_DIR" "$PID_DIR"
    if pid_alive "$name"; then log "$name already running"; return 0; fi
    setsid "$@" >>"$LOG_DIR/$name.log" 2>&1 < /dev/null &
    echo $! >"$PID_DIR/$name.pid"
}

# The same, under deploy/local/supervise.sh: restarted whenever it exits, with back-off, until
# stopped; the pid file is the supervisor's, $PID_DIR/<name>.child the running process's.
spawn_supervised() {
    local name="$1"; shift
    spawn "$name" bash "$ROOT/deploy/local/supervise.sh" "$PID_DIR" "$name" "$@"
}

# The same, as the Kafka principal of that name (in the environment, never on a command line).
spawn_as_principal() {
    local name="$1"
    (export_kafka_client "$name"; spawn_supervised "$@")
}

child_pid() { [ -s "$PID_DIR/$1.child" ] && cat "$PID_DIR/$1.child"; }

# Stop a process group: SIGTERM, wait, then SIGKILL (a supervisor passes the SIGTERM on to its
# process; the SIGKILL has to reach that process's own group too).
terminate() {
    local name="$1" timeout="${2:-20}" pid child
    [ -f "$PID_DIR/$name.pid" ] || return 0
    pid="$(cat "$PID_DIR/$name.pid")"
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        local waited=0
        while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt $((timeout * 10)) ]; do sleep 0.1; waited=$((waited + 1)); done
        if kill -0 "$pid" 2>/dev/null; then
            log "$name did not stop in ${timeout}s; killing it"
            child="$(child_pid "$name")" && kill -KILL -- "-$child" 2>/dev/null
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$PID_DIR/$name.pid" "$PID_DIR/$name.child"
}

fail_with_log() {
    local name="$1" message="$2"
    printf '\033[1;31m[stack] %s; last lines of %s:\033[0m\n' "$message" "$LOG_DIR/$name.log" >&2
    tail -n 40 "$LOG_DIR/$name.log" >&2 || true
    exit 1
}

wait_for() { # name seconds command...
    local name="$1" seconds="$2"; shift 2
    local deadline=$((SECONDS + seconds))
    until "$@"; do
        pid_alive "$name" || fail_with_log "$name" "$name exited during start-up"
        [ "$SECONDS" -lt "$deadline" ] || fail_with_log "$name" "$name not healthy after ${seconds}s"
        sleep 0.2
    done
}

as_pg_owner() { if is_root; then runuser -u postgres -- "$@"; else "$@"; fi; }

# ---------------------------------------------------------------- postgres
PG_DATA="$STACK_DIR/postgres/data"
PG_RUN="$STACK_DIR/postgres/run"

pg_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; }

cmd_pg_start() {
    install_postgres
    mkdir -p "$STACK_DIR/postgres" "$LOG_DIR"
    if is_root; then
        id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres
        # PostgreSQL refuses to run as root; its directories belong to the postgres user.
        chown postgres "$STACK_DIR/postgres" "$LOG_DIR"
        local dir="$STACK_DIR"
        while [ "$dir" != "/" ]; do chmod o+x "$dir" 2>/dev/null || true; dir="$(dirname "$dir")"; done
    fi
    if [ ! -f "$PG_DATA/PG_VERSION" ]; then
        log "initialising PostgreSQL in $PG_DATA"
        local pwfile; pwfile="$(mktemp)"; echo "$PG_PASSWORD" >"$pwfile"; chmod 644 "$pwfile"
        as_pg_owner "$PG_BIN/initdb" -D "$PG_DATA" -U "$PG_USER" --pwfile="$pwfile" \
            --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$LOG_DIR/initdb.log" 2>&1 \
            || { rm -f "$pwfile"; fail_with_log initdb "initdb failed"; }
        rm -f "$pwfile"
    fi
    as_pg_owner mkdir -p "$PG_RUN"
    if pg_ready; then
        # Ours only if our data directory's postmaster is the one listening.
        local pid=""
        [ -f "$PG_DATA/postmaster.pid" ] && pid="$(head -n 1 "$PG_DATA/postmaster.pid")"
        if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
            die "port $PG_PORT is taken by another PostgreSQL (not $PG_DATA); stop it or set PG_PORT"
        fi
        log "postgres already running on $PG_PORT"
    else
        log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
        touch "$LOG_DIR/postgres.log"; is_root && chown postgres "$LOG_DIR/postgres.log"
        as_pg_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$LOG_DIR/postgres.log" -w -t 60 start \
            -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_RUN -c max_connections=300 -c shared_buffers=256MB ${PG_EXTRA_OPTIONS:-}" \
            >/dev/null || fail_with_log postgres "PostgreSQL did not start"
    fi
    make_pg_credentials
    local db
    for db in "${DATABASES[@]}"; do
        pg_service_role "$db" "$(pg_password "$db")"
        if ! pg_admin postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
            pg_admin postgres -q -c "CREATE DATABASE $db OWNER $db"
        fi
        pg_own_database "$db" "$db"
    done
}

# One role per service, owning its database and nothing else: a service's role cannot even
# connect to another's database. The passwords are made once and kept beside the data, readable
# by their owner only ("role password" per line). $PG_USER stays the cluster's administrator: the
# stack, the tests and the benchmarks create databases with it; no service uses it.
PG_CREDENTIALS="$STACK_DIR/postgres/credentials"

pg_admin() { local db="$1"; shift; "$PG_BIN/psql" -v ON_ERROR_STOP=1 -h "$PG_RUN" -p "$PG_PORT" -U "$PG_USER" -d "$db" "$@"; }

make_pg_credentials() {
    [ -s "$PG_CREDENTIALS" ] && return 0
    local db
    (umask 077; for db in "${DATABASES[@]}"; do echo "$db $(random_secret)"; done >"$PG_CREDENTIALS")
}

pg_password() {
    local password
    password="$(awk -v name="$1" '$1 == name { print $2 }' "$PG_CREDENTIALS")"
    [ -n "$password" ] || die "no database credentials for $1 in $PG_CREDENTIALS"
    echo "$password"
}

pg_service_role() { # role password
    pg_admin postgres -q <<SQL
SELECT format(CASE WHEN EXISTS (SELECT FROM pg_roles WHERE rolname = '$1')
                   THEN 'ALTER ROLE %I LOGIN PASSWORD %L' ELSE 'CREATE ROLE %I LOGIN PASSWORD %L' END,
              '$1', '$2') \gexec
SQL
}

# DATABASE owned by ROLE, with every table of it (a stack made before the roles existed had its
# tables made by $PG_USER), and no connection for anyone else but the administrator.
pg_own_database() { # database role
    pg_admin postgres -q -c "ALTER DATABASE $1 OWNER TO $2" -c "REVOKE ALL ON DATABASE $1 FROM PUBLIC"
    pg_admin "$1" -q <<SQL
SELECT format('ALTER %s %I.%I OWNER TO %I',
              CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                             WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END,
              n.nspname, c.relname, '$2')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'S', 'v', 'm')
  AND pg_get_userbyid(c.relowner) <> '$2'
  -- a column's own sequence follows its table
  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')) \gexec
SQL
}

# A crash, not a shutdown: the postmaster and every backend SIGKILLed at once; the next start
# replays the WAL.
cmd_pg_kill() {
    find_pg_bin || return 0
    [ -f "$PG_DATA/postmaster.pid" ] || return 0
    local pid children
    pid="$(head -n 1 "$PG_DATA/postmaster.pid")"
    children="$(pgrep -P "$pid" || true)"
    log "killing PostgreSQL (SIGKILL)"
    kill -KILL "$pid" $children 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
}

cmd_pg_stop() {
    find_pg_bin || return 0
    [ -f "$PG_DATA/postmaster.pid" ] || return 0
    log "stopping PostgreSQL"
    as_pg_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null 2>&1 || true
}

# ---------------------------------------------------------------- kafka
# KAFKA_BROKERS=3 makes a cluster of three nodes, each a broker and a KRaft controller (a quorum
# of three voters), node N on KAFKA_PORT + 10*(N-1) and KAFKA_CONTROLLER_PORT + 10*(N-1): topics
# get three copies and a write with acks=all waits for two (min.insync.replicas). One node is the
# default. The choice is kept with the storage, so a restart keeps it.
KAFKA_BROKERS_FILE="$STACK_DIR/kafka/brokers"
if [ -z "${KAFKA_BROKERS:-}" ]; then
    KAFKA_BROKERS="$(cat "$KAFKA_BROKERS_FILE" 2>/dev/null || echo 1)"
fi
case "$KAFKA_BROKERS" in 1|3) ;; *) die "KAFKA_BROKERS must be 1 or 3, not $KAFKA_BROKERS" ;; esac
if [ -f "$KAFKA_BROKERS_FILE" ] && [ "$(cat "$KAFKA_BROKERS_FILE")" != "$KAFKA_BROKERS" ]; then
    die "the Kafka storage under $STACK_DIR/kafka is for $(cat "$KAFKA_BROKERS_FILE") broker(s); remove it to change"
fi
KAFKA_NODES="$(seq 1 "$KAFKA_BROKERS" | tr '\n' ' ')"
# Node 1 keeps the single broker's names (pid "kafka", data/, server.properties).
kafka_name() { if [ "$1" = 1 ]; then echo kafka; else echo "kafka-$1"; fi; }
kafka_port() { echo $((KAFKA_PORT + 10 * ($1 - 1))); }
kafka_controller_port() { echo $((KAFKA_CONTROLLER_PORT + 10 * ($1 - 1))); }
kafka_data() { if [ "$1" = 1 ]; then echo "$STACK_DIR/kafka/data"; else echo "$STACK_DIR/kafka/data-$1"; fi; }
kafka_config() { if [ "$1" = 1 ]; then echo "$STACK_DIR/kafka/server.properties"; else echo "$STACK_DIR/kafka/server-$1.properties"; fi; }
kafka_bootstrap() {
    local node addresses=()
    for node in $KAFKA_NODES; do addresses+=("127.0.0.1:$(kafka_port "$node")"); done
    (IFS=,; echo "${addresses[*]}")
}
# Copies of each partition, and how many must have a write before acks=all answers.
KAFKA_REPLICATION_FACTOR="$KAFKA_BROKERS"
KAFKA_MIN_INSYNC=$(( KAFKA_BROKERS > 1 ? 2 : 1 ))
# The broker authenticates every client (SASL/SCRAM-SHA-512) and authorizes it with the ACLs of
# contracts.access; each process of the system has a principal of its own. The passwords are made
# with the broker's storage and kept beside it, readable by their owner only ("name password" per
# line). KAFKA_SECURITY=SASL_SSL adds TLS with a CA of the stack's own (the production path);
# the choice is kept with the storage, so a restart keeps it.
KAFKA_CREDENTIALS="$STACK_DIR/kafka/credentials"
KAFKA_TLS_DIR="$STACK_DIR/kafka/tls"
KAFKA_SECURITY_FILE="$STACK_DIR/kafka/security"
if [ -z "${KAFKA_SECURITY:-}" ]; then
    KAFKA_SECURITY="$(cat "$KAFKA_SECURITY_FILE" 2>/dev/null || echo SASL_PLAINTEXT)"
fi
case "$KAFKA_SECURITY" in SASL_PLAINTEXT|SASL_SSL) ;; *) die "KAFKA_SECURITY must be SASL_PLAINTEXT or SASL_SSL, not $KAFKA_SECURITY" ;; esac

random_secret() { python3 -c 'import secrets; print(secrets.token_urlsafe(24))'; }

# The principals come from the code that grants them their ACLs: one list.
kafka_principals() { "$PYTHON" -c 'from contracts.access import PRINCIPAL_NAMES; print(*PRINCIPAL_NAMES)'; }

make_kafka_credentials() {
    [ -s "$KAFKA_CREDENTIALS" ] && return 0
    mkdir -p "$(dirname "$KAFKA_CREDENTIALS")"
    local name principals
    principals="$(kafka_principals)" || die "could not list the Kafka principals (is the Python environment installed?)"
    (umask 077; for name in controller $principals; do echo "$name $(random_secret)"; done >"$KAFKA_CREDENTIALS")
}

kafka_password() {
    local password
    password="$(awk -v name="$1" '$1 == name { print $2 }' "$KAFKA_CREDENTIALS")"
    [ -n "$password" ] || die "no Kafka credentials for $1 in $KAFKA_CREDENTIALS"
    echo "$password"
}

# A CA and a broker certificate for 127.0.0.1, made once per storage (SASL_SSL only).
make_kafka_tls() {
    [ -s "$KAFKA_TLS_DIR/broker.pem" ] && return 0
    command -v openssl >/dev/null || apt_install openssl
    mkdir -p "$KAFKA_TLS_DIR"
    (
        umask 077 && cd "$KAFKA_TLS_DIR" || exit 1
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=Mario's Pizzeria stack CA" \
            -keyout ca.key -out ca.crt
        openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout broker.key -out broker.csr
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >broker.ext
        openssl x509 -req -in broker.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 \
            -extfile broker.ext -out broker.crt
        cat broker.key broker.crt >broker.pem
        chmod 644 ca.crt
    ) >"$LOG_DIR/kafka-tls.log" 2>&1 || fail_with_log kafka-tls "could not make the broker's certificate"
}

# A client of the broker as PRINCIPAL (the variables eventing.kafka_security reads).
export_kafka_client() {
    export KAFKA_SECURITY_PROTOCOL="$KAFKA_SECURITY" KAFKA_SASL_MECHANISM=SCRAM-SHA-512
    export KAFKA_SASL_USERNAME="$1"
    KAFKA_SASL_PASSWORD="$(kafka_password "$1")"; export KAFKA_SASL_PASSWORD
    if [ "$KAFKA_SECURITY" = SASL_SSL ]; then export KAFKA_SSL_CAFILE="$KAFKA_TLS_DIR/ca.crt"; else unset KAFKA_SSL_CAFILE; fi
}

# Listening is enough here: `pizzeria topics ensure` then waits until the broker answers requests.
kafka_ready() { port_open "$(kafka_port "$1")"; }

# The configuration of node $1, from the one template (deploy/kafka/server.properties.template).
render_kafka_config() {
    local node="$1" config data
    config="$(kafka_config "$node")" data="$(kafka_data "$node")"
    # It holds the broker's own passwords.
    (umask 077; sed -e "s|@KAFKA_PORT@|$(kafka_port "$node")|g" -e "s|@CONTROLLER_PORT@|$(kafka_controller_port "$node")|g" \
        -e "s|@DATA_DIR@|$data|g" -e "s|@BROKER_PROTOCOL@|$KAFKA_SECURITY|g" \
        -e "s|@LISTEN_HOST@|127.0.0.1|g" -e "s|@ADVERTISED_HOST@|127.0.0.1|g" \
        -e "s|@ADMIN_PASSWORD@|$(kafka_password admin)|g" -e "s|@CONTROLLER_PASSWORD@|$(kafka_password controller)|g" \
        "$ROOT/deploy/kafka/server.properties.template" >"$config")
    if [ "$KAFKA_BROKERS" -gt 1 ]; then
        # A static quorum of every node, and the replication of a cluster.
        local voters=() other
        for other in $KAFKA_NODES; do voters+=("$other@127.0.0.1:$(kafka_controller_port "$other")"); done
        sed -i -e "s|^node.id=.*|node.id=$node|" \
            -e "s|^# One node: every replication factor is 1.|# $KAFKA_BROKERS nodes: $KAFKA_REPLICATION_FACTOR copies, $KAFKA_MIN_INSYNC in sync for a write.|" \
            -e "s|^controller.quorum.bootstrap.servers=.*|controller.quorum.voters=$(IFS=,; echo "${voters[*]}")|" \
            -e "s|^\(offsets.topic.replication.factor\)=.*|\1=$KAFKA_REPLICATION_FACTOR|" \
            -e "s|^\(transaction.state.log.replication.factor\)=.*|\1=$KAFKA_REPLICATION_FACTOR|" \
            -e "s|^\(share.coordinator.state.topic.replication.factor\)=.*|\1=$KAFKA_REPLICATION_FACTOR|" \
            -e "s|^\(default.replication.factor\)=.*|\1=$KAFKA_REPLICATION_FACTOR|" \
            -e "s|^\(transaction.state.log.min.isr\)=.*|\1=$KAFKA_MIN_INSYNC|" \
            -e "s|^\(share.coordinator.state.topic.min.isr\)=.*|\1=$KAFKA_MIN_INSYNC|" \
            -e "s|^\(min.insync.replicas\)=.*|\1=$KAFKA_MIN_INSYNC|" \
            "$config"
        # A broker back from a crash gets its partitions' leadership back within 20 s (the
        # preferred-leader election; Kafka checks every 300 s by default).
        echo "leader.imbalance.check.interval.seconds=20" >>"$config"
    fi
    if [ "$KAFKA_SECURITY" = SASL_SSL ]; then
        # The broker's certificate, and its own trust in it for its inter-broker client.
        printf '%s\n' "ssl.keystore.type=PEM" "ssl.keystore.location=$KAFKA_TLS_DIR/broker.pem" \
            "ssl.truststore.type=PEM" "ssl.truststore.location=$KAFKA_TLS_DIR/ca.crt" >>"$config"
    fi
    if [ -n "${KAFKA_PROXIED_PORT:-}" ]; then
        # A second listener whose clients are told to come back through a fault proxy
        # (KAFKA_PROXY_PORT, forwarding to this port): `make chaos` puts the services behind it.
        [ "$KAFKA_BROKERS" = 1 ] || die "KAFKA_PROXIED_PORT is for a single broker"
        sed -i -e "s|^listeners=\(.*\)|listeners=\1,PROXIED://127.0.0.1:$KAFKA_PROXIED_PORT|" \
            -e "s|^advertised.listeners=\(.*\)|advertised.listeners=\1,PROXIED://127.0.0.1:$KAFKA_PROXY_PORT|" \
            -e "s|^listener.security.protocol.map=\(.*\)|listener.security.protocol.map=\1,PROXIED:$KAFKA_SECURITY|" \
            "$config"
        echo 'listener.name.proxied.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;' >>"$config"
    fi
}

kafka_java_opts() {
    KAFKA_JAVA_OPTS=(-cp "$KAFKA_LIBS/*" -Dlog4j2.configurationFile="$ROOT/deploy/kafka/log4j2.yaml"
        $KAFKA_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true)
}

# kafka-start [NODE]: every node, or the one given (after kafka-kill NODE, say).
cmd_kafka_start() {
    install_kafka
    mkdir -p "$STACK_DIR/kafka" "$LOG_DIR"
    make_kafka_credentials
    echo "$KAFKA_SECURITY" >"$KAFKA_SECURITY_FILE"
    echo "$KAFKA_BROKERS" >"$KAFKA_BROKERS_FILE"
    [ "$KAFKA_SECURITY" = SASL_SSL ] && make_kafka_tls
    kafka_java_opts
    local nodes="${1:-$KAFKA_NODES}" node name cluster_id
    for node in $nodes; do
        mkdir -p "$(kafka_data "$node")"
        render_kafka_config "$node"
        [ -f "$(kafka_data "$node")/meta.properties" ] && continue
        # Every node of a cluster is formatted with one id, kept beside the storage.
        # --cluster-id=<id>: a random id may start with "-", which the option parser would take for a flag.
        [ -s "$STACK_DIR/kafka/cluster-id" ] || python3 -c 'import base64, uuid; print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))' >"$STACK_DIR/kafka/cluster-id"
        cluster_id="$(cat "$STACK_DIR/kafka/cluster-id")"
        log "formatting Kafka storage of node $node (cluster $cluster_id) with a SCRAM user per principal"
        local scram=() principal quorum=()
        for principal in $(kafka_principals); do
            scram+=(--add-scram "SCRAM-SHA-512=[name=$principal,password=$(kafka_password "$principal")]")
        done
        [ "$KAFKA_BROKERS" = 1 ] && quorum=(--standalone)  # a cluster's voters are in its configuration
        java "${KAFKA_JAVA_OPTS[@]}" kafka.tools.StorageTool format "${quorum[@]}" --cluster-id="$cluster_id" -c "$(kafka_config "$node")" \
            "${scram[@]}" >"$LOG_DIR/kafka-format.log" 2>&1 || fail_with_log kafka-format "formatting Kafka storage failed"
    done
    for node in $nodes; do
        name="$(kafka_name "$node")"
        if pid_alive "$name"; then log "$name already running"; continue; fi
        log "starting Kafka $KAFKA_VERSION node $node on 127.0.0.1:$(kafka_port "$node")"
        : >"$LOG_DIR/$name.log"
        spawn "$name" java "${KAFKA_JAVA_OPTS[@]}" kafka.Kafka "$(kafka_config "$node")"
    done
    for node in $nodes; do wait_for "$(kafka_name "$node")" 90 kafka_ready "$node"; done
}

# `eval "$(stack.sh kafka-env analyst)"`: this shell talks to the broker as that principal.
cmd_kafka_env() {
    [ -n "$1" ] || die "usage: stack.sh kafka-env PRINCIPAL (one of: $(kafka_principals))"
    [ -s "$KAFKA_CREDENTIALS" ] || die "no broker credentials in $KAFKA_CREDENTIALS: start the stack first"
    export_kafka_client "$1"
    printf 'export KAFKA_BOOTSTRAP_SERVERS=%q KAFKA_SECURITY_PROTOCOL=%q KAFKA_SASL_MECHANISM=%q KAFKA_SASL_USERNAME=%q KAFKA_SASL_PASSWORD=%q\n' \
        "$(kafka_bootstrap)" "$KAFKA_SECURITY_PROTOCOL" "$KAFKA_SASL_MECHANISM" "$KAFKA_SASL_USERNAME" "$KAFKA_SASL_PASSWORD"
    [ "$KAFKA_SECURITY" = SASL_SSL ] && printf 'export KAFKA_SSL_CAFILE=%q\n' "$KAFKA_SSL_CAFILE"
    return 0
}

# kafka-stop [NODE], kafka-kill [NODE]: every node, or the one given.
cmd_kafka_stop() {
    local node
    log "stopping Kafka${1:+ node $1}"
    # Side by side: a cluster's last node would wait for a quorum that had already left.
    for node in ${1:-$KAFKA_NODES}; do terminate "$(kafka_name "$node")" 30 & done
    wait
}
cmd_kafka_kill() {
    local node name
    for node in ${1:-$KAFKA_NODES}; do
        name="$(kafka_name "$node")"
        pid_alive "$name" && kill -KILL -- "-$(cat "$PID_DIR/$name.pid")" 2>/dev/null
        rm -f "$PID_DIR/$name.pid"
    done
    return 0
}

# Kafka's own command-line tools, from the stack's jars: what bin/kafka-TOOL.sh of Kafka's
# distribution runs. The brokers authenticate every client, so the tool is given the admin
# principal's client configuration (in a file readable by its owner only, never on a command line)
# and the stack's brokers; the rest of the command line is the tool's own, e.g.
#   stack.sh kafka-tool reassign-partitions --reassignment-json-file moves.json --execute
#   stack.sh kafka-tool leader-election --election-type PREFERRED --all-topic-partitions
kafka_tool_class() {
    case "$1" in
        reassign-partitions) echo org.apache.kafka.tools.reassign.ReassignPartitionsCommand ;;
        leader-election) echo org.apache.kafka.tools.LeaderElectionCommand ;;
        topics) echo org.apache.kafka.tools.TopicCommand ;;
        consumer-groups) echo org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
        acls) echo org.apache.kafka.tools.AclCommand ;;
        configs) echo kafka.admin.ConfigCommand ;;
        metadata-quorum) echo org.apache.kafka.tools.MetadataQuorumCommand ;;
        *) return 1 ;;
    esac
}

KAFKA_ADMIN_CLIENT_CONFIG="$STACK_DIR/kafka/admin-client.properties"

cmd_kafka_tool() {
    local tool="${1:-}" class
    class="$(kafka_tool_class "$tool")" || die "usage: stack.sh kafka-tool TOOL ARGS... (TOOL: reassign-partitions, leader-election, topics, consumer-groups, acls, configs, metadata-quorum)"
    shift
    [ -s "$KAFKA_CREDENTIALS" ] || die "no broker credentials in $KAFKA_CREDENTIALS: start the stack first"
    install_kafka
    # Written every time (a storage made anew has new passwords), and made anew, so that the umask
    # sets its mode.
    rm -f "$KAFKA_ADMIN_CLIENT_CONFIG"
    (umask 077; {
        echo "security.protocol=$KAFKA_SECURITY"
        echo "sasl.mechanism=SCRAM-SHA-512"
        echo "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"admin\" password=\"$(kafka_password admin)\";"
        if [ "$KAFKA_SECURITY" = SASL_SSL ]; then
            echo "ssl.truststore.type=PEM"
            echo "ssl.truststore.location=$KAFKA_TLS_DIR/ca.crt"
        fi
    } >"$KAFKA_ADMIN_CLIENT_CONFIG")
    # A client of a second or two: a small heap, and its warnings on stderr, so stdout is the
    # tool's answer alone.
    exec java -cp "$KAFKA_LIBS/*" -Dlog4j2.configurationFile="$ROOT/deploy/kafka/tools-log4j2.yaml" \
        -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
        "$class" --bootstrap-server "$(kafka_bootstrap)" --command-config "$KAFKA_ADMIN_CLIENT_CONFIG" "$@"
}

# ---------------------------------------------------------------- toxiproxy (make chaos)
# A real fault proxy (Shopify's Toxiproxy, built from the Go module proxy): `make chaos` routes
# the services' connections to PostgreSQL and Kafka through it and adds latency, black holes and
# resets. Proxies and toxics are made through its HTTP API on $TOXIPROXY_PORT.
TOXIPROXY_VERSION=v2.5.0
TOXIPROXY_PORT="${TOXIPROXY_PORT:-28474}"
TOXIPROXY_BIN="$ROOT/.local/toxiproxy-$TOXIPROXY_VERSION/toxiproxy-server"

install_toxiproxy() {
    [ -x "$TOXIPROXY_BIN" ] && return 0
    command -v go >/dev/null || apt_install golang-go
    log "building Toxiproxy $TOXIPROXY_VERSION from the Go module proxy (once)"
    local dir; dir="$(dirname "$TOXIPROXY_BIN")"
    mkdir -p "$dir"
    GOBIN="$dir" GOFLAGS=-mod=mod go install "github.com/Shopify/toxiproxy/v2/cmd/server@$TOXIPROXY_VERSION" \
        >"$ROOT/.local/toxiproxy-build.log" 2>&1 \
        || { tail -n 20 "$ROOT/.local/toxiproxy-build.log" >&2; die "could not build Toxiproxy"; }
    mv "$dir/server" "$TOXIPROXY_BIN"
}

cmd_toxiproxy_up() {
    install_toxiproxy
    if ! pid_alive toxiproxy; then
        log "starting Toxiproxy on 127.0.0.1:$TOXIPROXY_PORT"
        spawn toxiproxy "$TOXIPROXY_BIN" -host 127.0.0.1 -port "$TOXIPROXY_PORT"
    fi
    wait_for toxiproxy 30 port_open "$TOXIPROXY_PORT"
}

cmd_toxiproxy_down() { terminate toxiproxy 10; }

# ---------------------------------------------------------------- the system
# The URL a service (and its relay) uses: its own role on its own database.
db_url() { echo "postgresql+asyncpg://$1:$(pg_password "$1")@127.0.0.1:$PG_PORT/$1"; }

# The environment every service process gets (the same names docker-compose.yml uses).
export_service_env() {
    # A stack on this machine, for development: the services accept the public development
    # token secret and sinks only when told so (anywhere else they refuse to start).
    export AUTH_ENVIRONMENT=development
    KAFKA_BOOTSTRAP_SERVERS="$(kafka_bootstrap)"; export KAFKA_BOOTSTRAP_SERVERS
    export ORDERS_DATABASE_URL; ORDERS_DATABASE_URL="$(db_url orders)"
    export KITCHEN_DATABASE_URL; KITCHEN_DATABASE_URL="$(db_url kitchen)"
    export NOTIFICATIONS_DATABASE_URL; NOTIFICATIONS_DATABASE_URL="$(db_url notifications)"
    export ANALYTICS_DATABASE_URL; ANALYTICS_DATABASE_URL="$(db_url analytics)"
    export ORDERS_HTTP_PORT="$ORDERS_PORT" KITCHEN_HTTP_PORT="$KITCHEN_PORT"
    export NOTIFICATIONS_HTTP_PORT="$NOTIFICATIONS_PORT" ANALYTICS_HTTP_PORT="$ANALYTICS_PORT"
    export ORDERS_RELAY_METRICS_PORT KITCHEN_RELAY_METRICS_PORT
    export NOTIFICATIONS_SMTP_HOST=127.0.0.1 NOTIFICATIONS_SMTP_PORT="$SMTP_SINK_PORT"
    # Customers' sign-in codes: the orders service hands them to notifications, with a secret of
    # the stack's own (made once, kept beside the data).
    [ -s "$STACK_DIR/sign-in-token" ] || (mkdir -p "$STACK_DIR" && umask 077 && random_secret >"$STACK_DIR/sign-in-token")
    export ORDERS_NOTIFICATIONS_URL="http://127.0.0.1:$NOTIFICATIONS_PORT"
    ORDERS_NOTIFICATIONS_TOKEN="$(cat "$STACK_DIR/sign-in-token")"; export ORDERS_NOTIFICATIONS_TOKEN
    export NOTIFICATIONS_SIGN_IN_TOKEN="$ORDERS_NOTIFICATIONS_TOKEN"
    export NOTIFICATIONS_SMS_ENDPOINT_URL="http://127.0.0.1:$SMS_SINK_PORT/2010-04-01/Accounts/{account_sid}/Messages.json"
}

cmd_infra_up() {
    local started=$SECONDS
    cmd_install
    cmd_pg_start
    cmd_kafka_start
    export_service_env
    (
        export_kafka_client admin
        cd "$ROOT" \
            && "$PYTHON" -m contracts.cli topics ensure --replication-factor "$KAFKA_REPLICATION_FACTOR" \
                --min-insync-replicas "$KAFKA_MIN_INSYNC" >/dev/null \
            && "$PYTHON" -m contracts.cli access ensure >/dev/null
    ) || die "could not create the Kafka topics and ACLs"
    log "infrastructure healthy in $((SECONDS - started))s"
}

cmd_infra_down() { cmd_toxiproxy_down; cmd_kafka_stop; cmd_pg_stop; }

SERVICES=(orders kitchen notifications analytics)

http_ok() { python3 - "$1" <<'EOF'
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=1) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception:
    sys.exit(1)
EOF
}

write_stack_env() {
    local ssl_cafile_line=""
    [ "$KAFKA_SECURITY" = SASL_SSL ] && ssl_cafile_line="export KAFKA_SSL_CAFILE=$KAFKA_TLS_DIR/ca.crt"
    cat >"$STACK_DIR/stack.env" <<EOF
# Written by deploy/local/stack.sh up; source it in scripts.
export AUTH_ENVIRONMENT=development
export ORDERS_URL=http://127.0.0.1:$ORDERS_PORT
export KITCHEN_URL=http://127.0.0.1:$KITCHEN_PORT
export NOTIFICATIONS_URL=http://127.0.0.1:$NOTIFICATIONS_PORT
export ANALYTICS_URL=http://127.0.0.1:$ANALYTICS_PORT
export ORDERS_RELAY_METRICS_URL=http://127.0.0.1:$ORDERS_RELAY_METRICS_PORT/metrics
export KITCHEN_RELAY_METRICS_URL=http://127.0.0.1:$KITCHEN_RELAY_METRICS_PORT/metrics
export KAFKA_BOOTSTRAP=$(kafka_bootstrap)
export KAFKA_BOOTSTRAP_SERVERS=$(kafka_bootstrap)
export ORDERS_DATABASE_URL=$(db_url orders)
export KITCHEN_DATABASE_URL=$(db_url kitchen)
export NOTIFICATIONS_DATABASE_URL=$(db_url notifications)
export ANALYTICS_DATABASE_URL=$(db_url analytics)
export PG_DSN_BASE=postgresql://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT
export SMTP_SINK=127.0.0.1:$SMTP_SINK_PORT
export SMS_SINK_URL=http://127.0.0.1:$SMS_SINK_PORT
export NOTIFICATION_SINKS_DIR=$STACK_DIR/sinks
# Scripts talk to Kafka as the admin principal; the others' passwords are in KAFKA_CREDENTIALS.
export KAFKA_CREDENTIALS=$KAFKA_CREDENTIALS
export KAFKA_SECURITY_PROTOCOL=$KAFKA_SECURITY KAFKA_SASL_MECHANISM=SCRAM-SHA-512
export KAFKA_SASL_USERNAME=admin KAFKA_SASL_PASSWORD=$(kafka_password admin)
$ssl_cafile_line
EOF
    chmod 600 "$STACK_DIR/stack.env"
    # .local/stack.env always points at the stack last brought up.
    cp -p "$STACK_DIR/stack.env" "$ROOT/.local/stack.env"
}

cmd_up() {
    local started=$SECONDS
    cmd_infra_up
    export_service_env
    local service
    for service in "${SERVICES[@]}"; do
        (cd "$ROOT" && uv run --frozen --no-sync "$service" migrate) >>"$LOG_DIR/$service.log" 2>&1 \
            || fail_with_log "$service" "migrating the $service database failed"
    done
    # What the notifications service sends lands here: $STACK_DIR/sinks/{emails,sms}.jsonl.
    # Every process of the system is supervised: `make status` shows the restarts.
    spawn_supervised notification-sinks "$PYTHON" -m notifications.adapters.sinks \
        --smtp-port "$SMTP_SINK_PORT" --sms-port "$SMS_SINK_PORT" --dir "$STACK_DIR/sinks"
    spawn_as_principal orders-relay "$PYTHON" -m orders relay --log-format "$LOG_FORMAT"
    spawn_as_principal kitchen-relay "$PYTHON" -m kitchen relay --log-format "$LOG_FORMAT"
    for service in "${SERVICES[@]}"; do
        spawn_as_principal "$service" "$PYTHON" -m "$service" serve --log-format "$LOG_FORMAT"
    done
    local port
    wait_for notification-sinks 30 port_open "$SMS_SINK_PORT"
    wait_for notification-sinks 30 port_open "$SMTP_SINK_PORT"
    wait_for orders 60 http_ok "http://127.0.0.1:$ORDERS_PORT/readyz"
    wait_for kitchen 60 http_ok "http://127.0.0.1:$KITCHEN_PORT/readyz"
    wait_for notifications 60 http_ok "http://127.0.0.1:$NOTIFICATIONS_PORT/readyz"
    wait_for analytics 60 http_ok "http://127.0.0.1:$ANALYTICS_PORT/readyz"
    wait_for orders-relay 60 http_ok "http://127.0.0.1:$ORDERS_RELAY_METRICS_PORT/readyz"
    wait_for kitchen-relay 60 http_ok "http://127.0.0.1:$KITCHEN_RELAY_METRICS_PORT/readyz"
    write_stack_env
    log "stack healthy in $((SECONDS - started))s"
    cat >&2 <<EOF

  Orders API          http://127.0.0.1:$ORDERS_PORT/docs
  Kitchen             http://127.0.0.1:$KITCHEN_PORT/docs
  Notifications       http://127.0.0.1:$NOTIFICATIONS_PORT/docs
  Analytics           http://127.0.0.1:$ANALYTICS_PORT/docs
  Kitchen display     http://127.0.0.1:$KITCHEN_PORT/display
  Orders relay        http://127.0.0.1:$ORDERS_RELAY_METRICS_PORT/metrics
  Kitchen relay       http://127.0.0.1:$KITCHEN_RELAY_METRICS_PORT/metrics
  Kafka               $(kafka_bootstrap) ($KAFKA_BROKERS broker(s), $KAFKA_SECURITY, SCRAM-SHA-512; principals and passwords: $KAFKA_CREDENTIALS)
  Notification sinks  SMTP 127.0.0.1:$SMTP_SINK_PORT, SMS http://127.0.0.1:$SMS_SINK_PORT (received: $STACK_DIR/sinks)
  PostgreSQL          127.0.0.1:$PG_PORT, one role per service database (passwords: $PG_CREDENTIALS)
  Logs                $LOG_DIR
  Script environment  source $ROOT/.local/stack.env

EOF
}

# The extra instances `scale` started, one name per line.
INSTANCES_FILE="$STACK_DIR/instances"
extra_instances() { [ -s "$INSTANCES_FILE" ] && cat "$INSTANCES_FILE"; return 0; }

# Processes 2..N of a service (another member of its consumer group, serving HTTP on a port of
# its own) or of a relay (sharing the outbox's shards), as the process's own Kafka principal and
# under a supervisor; instances above N are stopped.
cmd_scale() {
    local process="${1:-}" count="${2:-}" service port_var port i name
    case "$process" in
        orders|kitchen|notifications|analytics) service="$process"; port_var="${process^^}_PORT" ;;
        orders-relay|kitchen-relay) service="${process%-relay}"; port_var="${service^^}_RELAY_METRICS_PORT" ;;
        *) die "scale: PROCESS is one of orders kitchen notifications analytics orders-relay kitchen-relay" ;;
    esac
    [[ "$count" =~ ^[1-9][0-9]?$ ]] || die "scale: N is how many processes of $process, 1 to 99"
    pid_alive "$process" || die "scale: $process is not running; start the stack with make up first"
    export_service_env
    for name in $(extra_instances | grep -E "^$process-[0-9]+\$"); do
        i="${name##*-}"
        if [ "$i" -gt "$count" ]; then
            terminate "$name" 40
            sed -i "/^$name\$/d" "$INSTANCES_FILE"
            log "$name stopped"
        fi
    done
    for ((i = 2; i <= count; i++)); do
        name="$process-$i"
        port=$(( ${!port_var} + 100 * (i - 1) ))
        if [ "$service" = "$process" ]; then
            (export "${service^^}_HTTP_PORT=$port"; export_kafka_client "$process"
             spawn_supervised "$name" "$PYTHON" -m "$service" serve --log-format "$LOG_FORMAT")
        else
            (export "${service^^}_RELAY_METRICS_PORT=$port"; export_kafka_client "$process"
             spawn_supervised "$name" "$PYTHON" -m "$service" relay --log-format "$LOG_FORMAT")
        fi
        grep -qx "$name" "$INSTANCES_FILE" 2>/dev/null || echo "$name" >>"$INSTANCES_FILE"
        wait_for "$name" 60 http_ok "http://127.0.0.1:$port/readyz"
        log "$name ready on port $port"
    done
}

cmd_down() {
    local name
    for name in $(extra_instances); do terminate "$name" 20; done
    rm -f "$INSTANCES_FILE"
    for name in "${SUPERVISED[@]}"; do terminate "$name" 20; done
    cmd_infra_down
    log "stack stopped"
}

cmd_run() {
    LOG_FORMAT=text  # for people reading along; `up` keeps JSON lines for tools
    local tail_pid=""
    trap 'echo; [ -n "$tail_pid" ] && kill "$tail_pid" 2>/dev/null; cmd_down; exit 0' INT TERM
    cmd_up
    log "streaming logs; Ctrl-C stops everything"
    local files=()
    local name
    for name in orders orders-relay kitchen kitchen-relay notifications notification-sinks analytics; do
        files+=("$LOG_DIR/$name.log")
    done
    tail -n 0 -F "${files[@]}" &
    tail_pid=$!
    wait "$tail_pid"
}

SUPERVISED=(orders orders-relay kitchen kitchen-relay notifications notification-sinks analytics)

# One line per process; a supervised one with its restarts and how its last run ended.
cmd_status() {
    find_pg_bin && pg_ready && echo "postgres: running on $PG_PORT" || echo "postgres: stopped"
    local node kafka
    for node in $KAFKA_NODES; do
        kafka="$(kafka_name "$node")"
        if pid_alive "$kafka"; then echo "$kafka: running (pid $(cat "$PID_DIR/$kafka.pid"))"; else echo "$kafka: stopped"; fi
    done
    local name child restarts last_exit
    for name in "${SUPERVISED[@]}" $(extra_instances); do
        if ! pid_alive "$name"; then echo "$name: stopped"; continue; fi
        restarts="$(cat "$PID_DIR/$name.restarts" 2>/dev/null || echo 0)"
        last_exit="$(cat "$PID_DIR/$name.exit" 2>/dev/null || true)"
        if child="$(child_pid "$name")" && kill -0 "$child" 2>/dev/null; then
            echo "$name: running (pid $child, restarts $restarts${last_exit:+, last ended: $last_exit})"
        else
            echo "$name: down, being restarted (restarts $restarts${last_exit:+, last ended: $last_exit})"
        fi
    done
}

case "${1:-}" in
    install) cmd_install ;;
    python-env) install_python ;;
    infra-up) cmd_infra_up ;;
    infra-down) cmd_infra_down ;;
    up) cmd_up ;;
    down) cmd_down ;;
    run) cmd_run ;;
    status) cmd_status ;;
    scale) cmd_scale "${2:-}" "${3:-}" ;;
    pg-start) cmd_pg_start ;;
    pg-stop) cmd_pg_stop ;;
    pg-kill) cmd_pg_kill ;;
    toxiproxy-up) cmd_toxiproxy_up ;;
    toxiproxy-down) cmd_toxiproxy_down ;;
    kafka-start) cmd_kafka_start "${2:-}" ;;
    kafka-stop) cmd_kafka_stop "${2:-}" ;;
    kafka-kill) cmd_kafka_kill "${2:-}" ;;
    kafka-env) cmd_kafka_env "${2:-}" ;;
    kafka-tool) shift; cmd_kafka_tool "$@" ;;
    *) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
