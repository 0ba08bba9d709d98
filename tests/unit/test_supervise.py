"""deploy/local/supervise.sh: restarts whatever exits, passes a stop on once, and stops at once."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from tests.support.polling import eventually_blocking
from tests.support.processes import SUPERVISE


def supervise(tmp_path: Path, script: str, **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["bash", str(SUPERVISE), str(tmp_path / "state"), "job", "bash", "-c", script],
        env={**os.environ, "SUPERVISE_FIRST_BACKOFF_MS": "20", **env},
        cwd=tmp_path,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def state(tmp_path: Path, name: str) -> str:
    try:
        return (tmp_path / "state" / f"job.{name}").read_text().strip()
    except FileNotFoundError:
        return ""


def test_whatever_a_process_exits_with_it_is_started_again_and_told_so(tmp_path: Path) -> None:
    # Three runs: exit 3, killed by SIGKILL, then exit 0 (also restarted: only a stop ends it).
    script = """
        echo "$SUPERVISOR_RESTARTS:$SUPERVISOR_LAST_EXIT" >> runs
        case "$SUPERVISOR_RESTARTS" in 0) exit 3;; 1) kill -KILL $$;; 2) exit 0;; esac
        exec sleep 60
    """
    supervisor = supervise(tmp_path, script)
    try:
        runs = tmp_path / "runs"
        eventually_blocking(
            lambda: runs.exists() and len(runs.read_text().splitlines()) == 4,
            what="four runs",
            timeout=20,
            interval=0.02,
        )
        assert runs.read_text().splitlines() == ["0:", "1:exit 3", "2:signal 9", "3:exit 0"]
        assert state(tmp_path, "restarts") == "3"
        assert state(tmp_path, "exit") == "exit 0"
        assert supervisor.poll() is None
    finally:
        os.killpg(supervisor.pid, signal.SIGTERM)
        supervisor.wait(10)


def test_a_stop_reaches_the_process_once_and_ends_the_supervisor(tmp_path: Path) -> None:
    script = """
        trap 'echo TERM >> signals; exit 7' TERM
        echo up > ready
        while :; do sleep 0.05; done
    """
    supervisor = supervise(tmp_path, script)
    eventually_blocking(
        lambda: (tmp_path / "ready").exists(),
        what="the process to start",
        timeout=20,
        interval=0.02,
    )
    os.killpg(supervisor.pid, signal.SIGTERM)  # as `make down` does: the supervisor's group
    assert supervisor.wait(10) == 7  # the process's own status; no restart
    assert (tmp_path / "signals").read_text().splitlines() == ["TERM"]
    assert state(tmp_path, "restarts") == "0"


def test_a_stop_during_the_back_off_ends_it_at_once(tmp_path: Path) -> None:
    supervisor = supervise(
        tmp_path, "echo ran >> runs; exit 1", SUPERVISE_FIRST_BACKOFF_MS="600000"
    )
    eventually_blocking(
        lambda: state(tmp_path, "restarts") == "1", what="the first exit", timeout=20, interval=0.02
    )
    supervisor.send_signal(signal.SIGTERM)
    # Long before the back-off (5 to 10 minutes) would have ended.
    assert supervisor.wait(10) == 1
    assert (tmp_path / "runs").read_text().splitlines() == ["ran"]
    assert supervisor.stdout is not None
    assert b"ended (exit 1)" in supervisor.stdout.read()


def test_a_refused_configuration_is_not_restarted(tmp_path: Path) -> None:
    # 78 (EX_CONFIG) is what a service exits with when it refuses its settings.
    supervisor = supervise(tmp_path, "echo run >> runs; exit 78")
    assert supervisor.wait(10) == 78
    assert (tmp_path / "runs").read_text().splitlines() == ["run"]
    assert state(tmp_path, "restarts") == "0"
    assert state(tmp_path, "exit") == "exit 78 (configuration refused)"
