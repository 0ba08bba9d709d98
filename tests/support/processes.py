"""Service processes for end-to-end and fault tests: real processes that tests can kill."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.infra import ROOT, Infra
from tests.support.polling import NotReached, eventually, eventually_blocking

# Where the tests' processes write their logs; the benchmarks pass directories of their own.
TEST_LOG_DIR = ROOT / ".local" / "test-logs"
SUPERVISE = ROOT / "deploy" / "local" / "supervise.sh"

# Every process a test started, so the session can kill what a failing test left behind.
STARTED: list[ServiceProcess] = []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServiceProcess:
    """One OS process of the system (``python -m <module> <command>``) in its own group.

    A ``supervised`` one runs under deploy/local/supervise.sh, as on the local stack: whatever it
    dies of, it comes back by itself. ``crash`` kills the service process alone (its supervisor
    restarts it); ``kill`` kills both, so that it stays down until ``start``. Its log is
    ``<log_dir>/<name>.log``.
    """

    name: str
    module: str
    command: str
    env: dict[str, str]
    ready_url: str
    supervised: bool = False
    log_dir: Path = TEST_LOG_DIR
    log_path: Path = field(init=False)
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.log_dir / f"{self.name}.log"

    @property
    def state_dir(self) -> Path:
        # One per process object: several systems of a session share the processes' names.
        return self.log_dir / "supervisor" / f"{self.name}-{id(self):x}"

    def start(self) -> None:
        log = self.log_path.open("ab")
        command = [sys.executable, "-m", self.module, self.command, "--log-format", "text"]
        if self.supervised:
            command = ["bash", str(SUPERVISE), str(self.state_dir), self.name, *command]
        self.process = subprocess.Popen(
            command,
            # A first restart in tests need not wait as long as on a real stack.
            env={**os.environ, "SUPERVISE_FIRST_BACKOFF_MS": "200", **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=ROOT,
        )
        STARTED.append(self)

    @property
    def alive(self) -> bool:
        """Running, or (supervised) being brought back."""
        return self.process is not None and self.process.poll() is None

    def service_pid(self) -> int | None:
        """The running service process (also its process group), if there is one now."""
        if not self.alive:
            return None
        assert self.process is not None
        if not self.supervised:
            return self.process.pid
        try:
            text = (self.state_dir / f"{self.name}.child").read_text().strip()
        except FileNotFoundError:
            return None
        return int(text) if text else None

    @property
    def restarts(self) -> int:
        """How many times the supervisor restarted the service process."""
        try:
            return int((self.state_dir / f"{self.name}.restarts").read_text().strip() or 0)
        except FileNotFoundError:
            return 0

    async def wait_ready(self, timeout: float = 60, *, path: str = "/readyz") -> None:
        """Until its readiness check (or another endpoint: ``/healthz``, started and serving)
        answers 200; fails at once if the process exited."""
        url = f"{base_url(self)}{path}"
        async with httpx.AsyncClient(timeout=2) as client:

            async def readiness() -> int:
                if not self.alive:
                    raise RuntimeError(f"{self.name} exited; log:\n{self.log_tail()}")
                return (await client.get(url)).status_code

            try:
                await eventually(
                    readiness,
                    until=lambda status: status == 200,
                    timeout=timeout,
                    interval=0.2,
                    retry=(httpx.HTTPError,),
                    what=f"{self.name} ready",
                )
            except NotReached as error:
                error.add_note(f"log:\n{self.log_tail()}")
                raise

    def crash(self) -> None:
        """SIGKILL the service process and let its supervisor bring it back; returns once the
        killed process is gone (no longer answering, so ``wait_ready`` sees the new one)."""
        assert self.supervised, "only a supervised process comes back by itself"
        pid = self.service_pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        eventually_blocking(
            self.service_pid,
            until=lambda now: now != pid,
            timeout=10,
            interval=0.02,
            what=f"{self.name}'s killed process {pid} gone",
        )

    def signal_service(self, signum: int) -> None:
        """Send ``signum`` to the service process's group (SIGSTOP / SIGCONT freeze and thaw it)."""
        pid = self.service_pid()
        if pid is not None:
            os.killpg(pid, signum)

    def kill(self) -> None:
        """SIGKILL, as a crash would: no clean-up, no offset commit, no goodbye to the group.
        A supervised process is killed with its supervisor, so it stays down."""
        if self.supervised:
            service = self.service_pid()
            self._signal(signal.SIGKILL)
            if service is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(service, signal.SIGKILL)
        else:
            self._signal(signal.SIGKILL)

    def terminate(self, timeout: float = 30) -> None:
        """SIGTERM (a supervisor passes it on, once), then SIGKILL after ``timeout``."""
        self._signal(signal.SIGTERM)
        if self.process is not None:
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def _signal(self, signum: int) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            return
        if signum == signal.SIGKILL:
            self.process.wait(10)

    def signal_worker(self, pid: int, signum: int) -> None:
        """Send ``signum`` to one HTTP worker (see ``http_workers``)."""
        assert pid in http_workers(self), f"{pid} is not one of {self.name}'s workers"
        os.kill(pid, signum)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def http_workers(process: ServiceProcess) -> list[int]:
    """The HTTP worker processes of a service serving with ``<PREFIX>_HTTP_WORKERS`` (uvicorn's
    workers: the children of the service process started by multiprocessing's spawn, not its
    resource tracker), oldest first."""
    parent = process.service_pid()
    if parent is None:
        return []
    try:
        children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    except FileNotFoundError:
        return []
    workers = []
    for child in map(int, children):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:  # gone meanwhile
            continue
        if any(b"spawn_main" in part for part in command):
            workers.append(child)
    return workers


def kill_leftovers() -> None:
    for process in STARTED:
        process.kill()
    STARTED.clear()


def relay_process(
    infra: Infra,
    database_url: str,
    name: str = "relay",
    service: str = "orders",
    extra_env: dict[str, str] | None = None,
    *,
    supervised: bool = False,
    log_dir: Path = TEST_LOG_DIR,
) -> ServiceProcess:
    """The outbox relay of ``service`` (any database with an outbox table will do)."""
    port = free_port()
    prefix = service.upper()
    return ServiceProcess(
        name=name,
        module=service,
        command="relay",
        env={
            f"{prefix}_DATABASE_URL": database_url,
            "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap,
            f"{prefix}_RELAY_METRICS_PORT": str(port),
            **(extra_env or {}),
        },
        ready_url=f"http://127.0.0.1:{port}/readyz",
        supervised=supervised,
        log_dir=log_dir,
    )


# Tests place many orders from one address, often for one phone; the rate limits have tests of
# their own, which set them.
UNLIMITED = {
    "orders": {"ORDERS_PLACEMENTS_PER_CLIENT": "off", "ORDERS_PLACEMENTS_PER_CONTACT": "off"}
}


def service_process(
    infra: Infra,
    service: str,
    database_url: str,
    extra_env: dict[str, str] | None = None,
    *,
    supervised: bool = False,
    log_dir: Path = TEST_LOG_DIR,
) -> ServiceProcess:
    port = free_port()
    prefix = service.upper()
    return ServiceProcess(
        name=service,
        module=service,
        command="serve",
        env={
            f"{prefix}_DATABASE_URL": database_url,
            f"{prefix}_HTTP_PORT": str(port),
            "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap,
            **UNLIMITED.get(service, {}),
            **(extra_env or {}),
        },
        ready_url=f"http://127.0.0.1:{port}/readyz",
        supervised=supervised,
        log_dir=log_dir,
    )


def base_url(process: ServiceProcess) -> str:
    return process.ready_url.rsplit("/", 1)[0]
