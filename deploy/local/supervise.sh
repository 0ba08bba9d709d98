#!/usr/bin/env bash
# supervise.sh STATE_DIR NAME COMMAND...
#
# Runs COMMAND and runs it again whenever it exits, whatever it exited with, until this script is
# told to stop (SIGTERM or SIGINT, which it passes on to COMMAND, once). The system is built to be
# crash-only: a process that dies is restarted, not mourned. The one exception is exit status 78
# (EX_CONFIG): the process refused its configuration, which no restart mends, so the supervisor
# ends with it (like systemd's RestartPreventExitStatus).
#
# Between restarts it waits with exponential back-off and jitter: SUPERVISE_FIRST_BACKOFF_MS
# (default 500) doubling up to SUPERVISE_MAX_BACKOFF_MS (30000), each wait drawn between half and
# all of that. A run that lasted SUPERVISE_HEALTHY_SECONDS (60) starts the doubling again.
#
# COMMAND runs in a session of its own, so signals meant for the supervisor (a Ctrl-C, a SIGTERM to
# its group) reach COMMAND only through it, exactly once; a second SIGTERM would cut a consumer's
# graceful shutdown short.
#
# STATE_DIR/NAME.child    the pid (and process group) of the running COMMAND, empty while backing off
# STATE_DIR/NAME.restarts how many times COMMAND was restarted
# STATE_DIR/NAME.exit     how the last run ended ("exit 1", "signal 9")
# COMMAND sees SUPERVISOR_RESTARTS and SUPERVISOR_LAST_EXIT; the services show them in their metrics.
set -uo pipefail

[ "$#" -ge 3 ] || { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
state_dir="$1" name="$2"
shift 2
first_ms="${SUPERVISE_FIRST_BACKOFF_MS:-500}"
max_ms="${SUPERVISE_MAX_BACKOFF_MS:-30000}"
healthy_seconds="${SUPERVISE_HEALTHY_SECONDS:-60}"

mkdir -p "$state_dir"
restarts=0 streak=0 last_exit="" child="" sleeper="" stopping=0 status=0
echo 0 >"$state_dir/$name.restarts"
: >"$state_dir/$name.exit"

say() { printf '[supervise] %s %s\n' "$name" "$*" >&2; }

stop() {
    stopping=1
    # The group, or the pid alone if setsid has not made the group yet.
    [ -n "$child" ] && { kill -TERM -- "-$child" 2>/dev/null || kill -TERM "$child" 2>/dev/null; }
    [ -n "$sleeper" ] && kill "$sleeper" 2>/dev/null
}
trap stop TERM INT

while :; do
    started=$SECONDS
    SUPERVISOR_RESTARTS="$restarts" SUPERVISOR_LAST_EXIT="$last_exit" setsid "$@" &
    child=$!
    echo "$child" >"$state_dir/$name.child"
    [ "$stopping" = 1 ] && stop  # a stop that came before $child was known
    # A trapped signal ends `wait` early, with the child still running: wait until it has gone.
    while :; do
        wait "$child"
        status=$?
        kill -0 "$child" 2>/dev/null || break
    done
    child=""
    : >"$state_dir/$name.child"
    [ "$stopping" = 1 ] && exit "$status"
    if [ "$status" = 78 ]; then
        echo "exit 78 (configuration refused)" >"$state_dir/$name.exit"
        say "refused its configuration (exit 78); not restarting it"
        exit 78
    fi

    if [ "$status" -gt 128 ]; then last_exit="signal $((status - 128))"; else last_exit="exit $status"; fi
    echo "$last_exit" >"$state_dir/$name.exit"
    ran=$((SECONDS - started))
    [ "$ran" -ge "$healthy_seconds" ] && streak=0
    delay_ms=$((first_ms << streak))
    [ "$delay_ms" -gt "$max_ms" ] && delay_ms="$max_ms"
    [ "$delay_ms" -lt "$max_ms" ] && streak=$((streak + 1))
    delay_ms=$((delay_ms / 2 + RANDOM % (delay_ms / 2 + 1)))
    restarts=$((restarts + 1))
    echo "$restarts" >"$state_dir/$name.restarts"
    delay="$((delay_ms / 1000)).$(printf '%03d' $((delay_ms % 1000)))"
    say "ended ($last_exit) after ${ran}s; restart $restarts in ${delay}s"
    # In the background, so that a stop during the back-off is acted on at once.
    sleep "$delay" &
    sleeper=$!
    wait "$sleeper"
    sleeper=""
    [ "$stopping" = 1 ] && exit "$status"
done
