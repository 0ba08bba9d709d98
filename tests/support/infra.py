"""Real Kafka and PostgreSQL for the tests, in one of three ways (``TEST_INFRA``):

* ``local`` (default): the project's own scripts start a dedicated stack under
  ``.local/test-stack`` on its own ports, so it never touches a stack started by ``make up``.
* ``external``: ``TEST_KAFKA_BOOTSTRAP`` and ``TEST_POSTGRES_DSN`` point at running servers
  (the DSN's user must be allowed to create databases).
* ``testcontainers``: Kafka and PostgreSQL containers, where a Docker engine is available.

Whatever the mode, absent infrastructure is an error, never a skip.

The local broker authenticates every client (SASL/SCRAM) and authorizes it with the ACLs of
``contracts.access``. The test process and what it starts talk to it as the ``admin`` principal
(set in this process's environment by ``start_infra``) unless a test gives a process its own
principal with ``Infra.principal_env`` (``start_system`` gives each process of the system its
own). In ``external`` mode the ``KAFKA_SECURITY_PROTOCOL`` / ``KAFKA_SASL_*`` variables of the
environment are used as they are.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import asyncpg

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "deploy" / "local" / "stack.sh"

# Overridable so that two checkouts (or two people on one machine) can each run a test stack.
LOCAL_ENV = {
    "STACK_DIR": os.environ.get("TEST_STACK_DIR", str(ROOT / ".local" / "test-stack")),
    "PG_PORT": os.environ.get("TEST_PG_PORT", "25432"),
    "KAFKA_PORT": os.environ.get("TEST_KAFKA_PORT", "29092"),
    "KAFKA_CONTROLLER_PORT": os.environ.get("TEST_KAFKA_CONTROLLER_PORT", "29093"),
}


# The three-broker cluster's stack (KAFKA_BROKERS=3), beside the test stack: see kafka_cluster.
CLUSTER_ENV = {
    "STACK_DIR": os.environ.get(
        "TEST_CLUSTER_STACK_DIR", str(ROOT / ".local" / "test-cluster-stack")
    ),
    "PG_PORT": os.environ.get("TEST_CLUSTER_PG_PORT", "25452"),
    "KAFKA_PORT": os.environ.get("TEST_CLUSTER_KAFKA_PORT", "29192"),
    "KAFKA_CONTROLLER_PORT": os.environ.get("TEST_CLUSTER_KAFKA_CONTROLLER_PORT", "29193"),
    "KAFKA_BROKERS": "3",
    # Three brokers on a small machine: a smaller heap each.
    "KAFKA_HEAP": "-Xms128m -Xmx512m",
}

ADMIN = "admin"


@dataclass
class Infra:
    mode: str
    kafka_bootstrap: str
    postgres_dsn: str  # a DSN to the maintenance database, for CREATE DATABASE
    local_env: dict[str, str] = field(default_factory=lambda: dict(LOCAL_ENV))
    _cleanup: list[Any] = field(default_factory=list)
    # Kafka principal -> password (local mode: made by stack.sh with the broker's storage).
    kafka_passwords: dict[str, str] = field(default_factory=dict)
    kafka_protocol: str = "SASL_PLAINTEXT"
    kafka_cafile: str | None = None
    # Service database role -> password (local mode: made by stack.sh; one role per service).
    database_passwords: dict[str, str] = field(default_factory=dict)

    def principal_env(self, principal: str, password: str | None = None) -> dict[str, str]:
        """The variables that make a process talk to Kafka as ``principal``."""
        env = {
            "KAFKA_SECURITY_PROTOCOL": self.kafka_protocol,
            "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "KAFKA_SASL_USERNAME": principal,
            "KAFKA_SASL_PASSWORD": password or self.kafka_passwords[principal],
        }
        if self.kafka_cafile is not None:
            env["KAFKA_SSL_CAFILE"] = self.kafka_cafile
        return env

    def kafka_options(self, principal: str = ADMIN, password: str | None = None) -> dict[str, Any]:
        """Keyword arguments for an aiokafka client of the test broker as ``principal``."""
        from eventing.kafka_security import KafkaSecurity

        if self.mode != "local" and principal == ADMIN:
            security = KafkaSecurity()  # the environment's, as given
        else:
            env = self.principal_env(principal, password)
            security = KafkaSecurity.model_validate(
                {name.removeprefix("KAFKA_").lower(): value for name, value in env.items()}
            )
        return {"bootstrap_servers": self.kafka_bootstrap, **security.client_options()}

    @property
    def can_control_kafka(self) -> bool:
        return self.mode == "local"

    def stack(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run deploy/local/stack.sh with the test stack's environment (local mode only)."""
        if self.mode != "local":
            raise RuntimeError(f"cannot control the broker in {self.mode!r} mode")
        return subprocess.run(
            ["bash", str(STACK), *args],
            env={**os.environ, **self.local_env},
            check=check,
            text=True,
            capture_output=True,
        )

    def kafka_kill(self, node: int | None = None) -> None:
        """SIGKILL every broker, or node ``node`` of a cluster."""
        self.stack("kafka-kill", *_node(node), check=False)

    def kafka_stop(self, node: int | None = None) -> None:
        self.stack("kafka-stop", *_node(node))

    def kafka_start(self, node: int | None = None) -> None:
        self.stack("kafka-start", *_node(node))

    def kafka_tool(self, tool: str, *args: str) -> str:
        """One of Kafka's own tools (``stack.sh kafka-tool``: ``reassign-partitions``,
        ``leader-election``, ...) against the stack's brokers as the admin principal; returns
        what it printed."""
        result = self.stack("kafka-tool", tool, *args, check=False)
        if result.returncode != 0:
            raise RuntimeError(
                f"kafka-{tool} {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result.stdout

    def database_url(self, database: str) -> str:
        """SQLAlchemy URL of ``database`` on the test server."""
        base = self.postgres_dsn.rsplit("/", 1)[0]
        return base.replace("postgresql://", "postgresql+asyncpg://", 1) + f"/{database}"

    def role_url(self, database: str, role: str) -> str:
        """SQLAlchemy URL of ``database`` as the service role ``role``."""
        direct = urlsplit(self.database_url(database))
        host = direct.netloc.rsplit("@", 1)[-1]
        credentials = f"{role}:{quote(self.database_passwords[role], safe='')}"
        return direct._replace(netloc=f"{credentials}@{host}").geturl()

    async def create_database(self, prefix: str, *, owner: str | None = None) -> str:
        """A new, empty database with a unique name; returns its SQLAlchemy URL.

        With ``owner`` (a service's role, where the stack made them) it belongs to that role, no
        one else may connect (but the administrator), and the URL is the role's: as deployed."""
        name = f"t_{prefix}_{uuid.uuid4().hex[:10]}"
        if owner is not None and owner not in self.database_passwords:
            owner = None  # external or container infrastructure: one role for everything
        conn = await asyncpg.connect(self.postgres_dsn)
        try:
            if owner is None:
                await conn.execute(f'CREATE DATABASE "{name}"')
                return self.database_url(name)
            await conn.execute(f'CREATE DATABASE "{name}" OWNER "{owner}"')
            await conn.execute(f'REVOKE ALL ON DATABASE "{name}" FROM PUBLIC')
        finally:
            await conn.close()
        return self.role_url(name, owner)

    def stop(self) -> None:
        for cleanup in reversed(self._cleanup):
            cleanup()


def start_infra(local_env: dict[str, str] | None = None) -> Infra:
    """The infrastructure ``TEST_INFRA`` asks for; ``local_env`` moves a local stack elsewhere."""
    mode = os.environ.get("TEST_INFRA", "local") if local_env is None else "local"
    local_env = local_env or LOCAL_ENV
    if mode == "external":
        bootstrap = os.environ.get("TEST_KAFKA_BOOTSTRAP")
        dsn = os.environ.get("TEST_POSTGRES_DSN")
        if not bootstrap or not dsn:
            raise RuntimeError(
                "TEST_INFRA=external needs TEST_KAFKA_BOOTSTRAP and TEST_POSTGRES_DSN"
            )
        _ensure_topics(bootstrap)
        return Infra(mode, bootstrap, dsn)
    if mode == "testcontainers":
        return _start_containers()
    if mode != "local":
        raise RuntimeError(f"unknown TEST_INFRA {mode!r}: use local, external or testcontainers")
    infra = Infra(
        mode,
        kafka_bootstrap=local_bootstrap(local_env),
        postgres_dsn=f"postgresql://pizzeria:pizzeria@127.0.0.1:{local_env['PG_PORT']}/postgres",
        local_env=local_env,
    )
    keep = os.environ.get("TEST_KEEP_INFRA") == "1"
    if not (keep and _listening(int(local_env["KAFKA_PORT"]))):
        # A fresh broker each session: no records or consumer offsets left from an earlier run.
        # With TEST_KEEP_INFRA=1 a running test stack is reused as it is (other sessions may be
        # using it).
        infra.stack("kafka-stop", check=False)
        shutil.rmtree(Path(local_env["STACK_DIR"]) / "kafka", ignore_errors=True)
    result = infra.stack("infra-up", check=False)
    if result.returncode != 0:
        raise RuntimeError(f"the test stack did not start:\n{result.stdout}\n{result.stderr}")
    kafka_dir = Path(local_env["STACK_DIR"]) / "kafka"
    infra.kafka_passwords = _credentials(kafka_dir / "credentials")
    infra.kafka_protocol = (kafka_dir / "security").read_text().strip()
    infra.database_passwords = _credentials(
        Path(local_env["STACK_DIR"]) / "postgres" / "credentials"
    )
    if infra.kafka_protocol == "SASL_SSL":
        infra.kafka_cafile = str(kafka_dir / "tls" / "ca.crt")
    # This process, and every process it starts without a principal of its own, is admin.
    os.environ.update(infra.principal_env(ADMIN))
    if not keep:
        infra._cleanup.append(lambda: infra.stack("infra-down", check=False))
    return infra


@contextlib.contextmanager
def kafka_cluster() -> Iterator[Infra]:
    """The three-broker stack (``CLUSTER_ENV``, with a PostgreSQL of its own), started fresh and
    stopped after; meanwhile this process's environment is the cluster's admin principal."""
    saved = dict(os.environ)
    infra = start_infra(dict(CLUSTER_ENV))
    try:
        yield infra
    finally:
        infra.stop()  # unless TEST_KEEP_INFRA=1
        os.environ.clear()
        os.environ.update(saved)  # the session's own stack's admin


def local_bootstrap(local_env: dict[str, str]) -> str:
    """The brokers of a local stack: node N listens on KAFKA_PORT + 10 * (N - 1) (stack.sh)."""
    first, brokers = int(local_env["KAFKA_PORT"]), int(local_env.get("KAFKA_BROKERS", "1"))
    return ",".join(f"127.0.0.1:{first + 10 * node}" for node in range(brokers))


def _node(node: int | None) -> tuple[str, ...]:
    return () if node is None else (str(node),)


def _credentials(path: Path) -> dict[str, str]:
    """The "name password" lines stack.sh keeps beside the broker's and the server's data."""
    lines = path.read_text().splitlines()
    return dict(line.split(" ", 1) for line in lines if line.strip())


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _ensure_topics(bootstrap: str) -> None:
    subprocess.run(
        [
            "uv",
            "run",
            "--frozen",
            "--no-sync",
            "pizzeria",
            "--bootstrap-servers",
            bootstrap,
            "topics",
            "ensure",
        ],
        check=True,
        cwd=ROOT,
        capture_output=True,
    )


def _start_containers() -> Infra:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    kafka_version = (ROOT / "deploy" / "kafka" / "pom.xml").read_text().split("<kafka.version>")[1]
    kafka_version = kafka_version.split("<", 1)[0]
    kafka = KafkaContainer(f"apache/kafka:{kafka_version}").with_kraft()
    kafka.with_env("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false")
    postgres = PostgresContainer(
        "postgres:15", username="pizzeria", password="pizzeria", dbname="postgres"
    )
    kafka.start()
    postgres.start()
    dsn = (
        f"postgresql://pizzeria:pizzeria@{postgres.get_container_host_ip()}:"
        f"{postgres.get_exposed_port(5432)}/postgres"
    )
    bootstrap = kafka.get_bootstrap_server()
    _ensure_topics(bootstrap)
    infra = Infra("testcontainers", bootstrap, dsn)
    infra._cleanup.extend([kafka.stop, postgres.stop])
    return infra
