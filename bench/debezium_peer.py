"""Debezium's embedded engine as the relay's peer (bench/debezium/): built, configured, started.

The Maven project pins Debezium; its jars are resolved once into
``.local/debezium-<version>-<hash of the POM>/libs`` (as deploy/local/stack.sh keeps Kafka's) and
the one source file is compiled with javac into a directory named after its own hash, so a run
after the first needs neither the network nor Maven.

The engine streams the ``outbox`` table through pgoutput, on a replication slot and a
publication of its own (the table alone), polling every 10 ms, with an offset file per run, and
routes each row with Debezium's outbox event router mapped onto our outbox's columns
(``ROUTER``): the record the broker gets has the key, value and ``ce_`` headers the relay writes.
It connects to PostgreSQL as the given role: the bench gives it the stack's administrator, who
may replicate and create publications (a service role may do neither).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from eventing.cloudevents_kafka import AGGREGATE_VERSION, Envelope, encode
from eventing.database import outbox_table
from eventing.kafka_security import KafkaSecurity
from tests.support.infra import ROOT

PROJECT = ROOT / "bench" / "debezium"
POM = PROJECT / "pom.xml"
SOURCES = PROJECT / "src" / "main" / "java"
MAIN_CLASS = "com.mariospizzeria.bench.OutboxPeer"
READY = "outbox peer streaming"  # OutboxPeer.READY
VERSION = POM.read_text().split("<debezium.version>")[1].split("<", 1)[0]
JAVA_OPTIONS = ("-Xms128m", "-Xmx512m", "-Djava.awt.headless=true")

# Debezium's outbox event router onto eventing's outbox table: the record key is the partition
# key, the value the payload as stored, the topic the row's own; every other column the relay
# turns into a CloudEvents header becomes that header (a NULL column, no header, as the relay).
ROUTED_COLUMNS = {"event_id": "id", "partition_key": "key", "payload": "payload"}
ROUTED_BY = "topic"
HEADER_COLUMNS = {
    "event_id": "ce_id",
    "event_type": "ce_type",
    "source": "ce_source",
    "subject": "ce_subject",
    "created_at": "ce_time",
    "partition_key": "ce_partitionkey",
    "traceparent": "ce_traceparent",
    "aggregate_version": "ce_aggregateversion",
}
# Written by OutboxPeer on every record: constants, no column holds them.
CONSTANT_HEADERS = ("ce_specversion", "content-type")
ROUTER = {
    "transforms": "outbox",
    "transforms.outbox.type": "io.debezium.transforms.outbox.EventRouter",
    **{
        f"transforms.outbox.table.field.event.{field}": column
        for column, field in ROUTED_COLUMNS.items()
    },
    "transforms.outbox.route.by.field": ROUTED_BY,
    "transforms.outbox.route.topic.replacement": "${routedByValue}",
    "transforms.outbox.table.fields.additional.placement": ",".join(
        f"{column}:header:{header}" for column, header in HEADER_COLUMNS.items()
    ),
}


def router_mismatches() -> list[str]:
    """Where ``ROUTER`` and the outbox have drifted apart: a column it names that the table
    lacks, or a header the relay writes (every optional attribute set) that the peer would not,
    or the other way round. The peer is no peer unless this is empty."""
    columns = set(outbox_table.columns.keys())
    named = [*ROUTED_COLUMNS, ROUTED_BY, *HEADER_COLUMNS]
    wrong = [f"the outbox has no column {name!r}" for name in named if name not in columns]
    relay = encode(
        Envelope(
            id="id",
            type="type",
            source="source",
            subject="subject",
            time=datetime.now(UTC),
            data={},
            partition_key="key",
            traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            extensions={AGGREGATE_VERSION: "1"},
        ),
        data_json=b"{}",
    )
    relay_headers = {name for name, _ in relay.headers}
    peer_headers = {*HEADER_COLUMNS.values(), *CONSTANT_HEADERS}
    wrong += [f"the relay writes {name!r}, the peer not" for name in relay_headers - peer_headers]
    wrong += [f"the peer writes {name!r}, the relay not" for name in peer_headers - relay_headers]
    return wrong


def cache_dir() -> Path:
    pom_hash = hashlib.sha256(POM.read_bytes()).hexdigest()[:10]
    return ROOT / ".local" / f"debezium-{VERSION}-{pom_hash}"


def _source_files() -> list[Path]:
    return sorted(SOURCES.rglob("*.java"))


def build() -> str:
    """The class path of the built peer: jars resolved once, sources compiled when changed."""
    wrong = router_mismatches()
    if wrong:
        raise RuntimeError("the outbox event router does not fit the outbox: " + "; ".join(wrong))
    cache = cache_dir()
    libs = cache / "libs"
    if not (libs / ".complete").exists():
        shutil.rmtree(libs, ignore_errors=True)
        libs.mkdir(parents=True)
        log = ROOT / ".local" / "debezium-mvn.log"
        with log.open("w") as output:
            resolved = subprocess.run(
                ["mvn", "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
                 f"-DoutputDirectory={libs}", "-DincludeScope=runtime"],
                stdout=output,
                stderr=subprocess.STDOUT,
                check=False,
            )  # fmt: skip
        if resolved.returncode != 0:
            raise RuntimeError(f"maven could not resolve Debezium {VERSION}; see {log}")
        (libs / ".complete").touch()
    sources = _source_files()
    source_hash = hashlib.sha256(b"".join(path.read_bytes() for path in sources)).hexdigest()
    classes = cache / f"classes-{source_hash[:10]}"
    if not (classes / ".complete").exists():
        shutil.rmtree(classes, ignore_errors=True)
        subprocess.run(
            ["javac", "-nowarn", "--release", "17", "-cp", f"{libs}/*",
             "-d", str(classes), *map(str, sources)],
            check=True,
        )  # fmt: skip
        (classes / ".complete").touch()
    return f"{classes}:{libs}/*"


@dataclass(frozen=True)
class PeerConfig:
    """Where the peer streams from and produces to; ``name`` names its slot and publication."""

    database_url: str  # SQLAlchemy or libpq URL of the outbox's database, as a replicating role
    bootstrap_servers: str
    security: KafkaSecurity
    name: str
    offsets_file: Path
    tables: tuple[str, ...] = ("public.outbox",)

    def properties(self) -> dict[str, str]:
        """Engine (connector, router) and ``producer.*`` settings, as OutboxPeer reads them."""
        url = urlsplit(self.database_url)
        engine = {
            "name": self.name,
            "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
            "offset.storage": "org.apache.kafka.connect.storage.FileOffsetBackingStore",
            "offset.storage.file.filename": str(self.offsets_file),
            "offset.flush.interval.ms": "1000",
            "database.hostname": url.hostname or "127.0.0.1",
            "database.port": str(url.port or 5432),
            "database.user": unquote(url.username or ""),
            "database.password": unquote(url.password or ""),
            "database.dbname": url.path.lstrip("/"),
            "topic.prefix": "peer",
            "plugin.name": "pgoutput",
            "slot.name": self.name,
            "slot.drop.on.stop": "true",
            "publication.name": self.name,
            "publication.autocreate.mode": "filtered",
            "table.include.list": ",".join(self.tables),
            "snapshot.mode": "no_data",
            "poll.interval.ms": "10",
            "tombstones.on.delete": "false",
            # Its own context headers (connector, task, run id) on every record: not the relay's.
            "extended.headers.enabled": "false",
            **ROUTER,
        }
        # The relay's producer settings (eventing.relay.kafka_producer_factory).
        producer = {
            "bootstrap.servers": self.bootstrap_servers,
            "client.id": f"{self.name}-producer",
            "acks": "all",
            "enable.idempotence": "true",
            "linger.ms": "2",
            "batch.size": str(256 * 1024),
            "request.timeout.ms": "15000",
            "retry.backoff.ms": "200",
            **_java_security(self.security),
        }
        return engine | {f"producer.{name}": value for name, value in producer.items()}


def _java_security(security: KafkaSecurity) -> dict[str, str]:
    options: dict[str, str] = {"security.protocol": security.security_protocol}
    if security.uses_sasl:
        assert security.sasl_password is not None
        assert security.sasl_username is not None
        module = (
            "org.apache.kafka.common.security.plain.PlainLoginModule"
            if security.sasl_mechanism == "PLAIN"
            else "org.apache.kafka.common.security.scram.ScramLoginModule"
        )
        password = security.sasl_password.get_secret_value()
        options |= {
            "sasl.mechanism": security.sasl_mechanism,
            "sasl.jaas.config": f'{module} required username="{_jaas(security.sasl_username)}" '
            f'password="{_jaas(password)}";',
        }
    if security.uses_tls and security.ssl_cafile:
        options |= {"ssl.truststore.type": "PEM", "ssl.truststore.location": security.ssl_cafile}
    return options


def _jaas(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _properties_text(properties: dict[str, str]) -> str:
    """java.util.Properties format: backslashes, separators and line breaks escaped."""

    def escape(text: str) -> str:
        escaped = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
        return escaped.replace("=", "\\=").replace(":", "\\:")

    return "".join(f"{escape(name)}={escape(value)}\n" for name, value in properties.items())


class DebeziumPeer:
    """One OutboxPeer process; its output in ``log``."""

    def __init__(self, classpath: str, config: PeerConfig, log: Path) -> None:
        self.config = config
        self.log = log
        self._classpath = classpath
        self.process: asyncio.subprocess.Process | None = None
        self._output: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self, timeout: float = 120) -> None:
        """Start it and return once it streams (every row committed from then on is routed)."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.process = await asyncio.create_subprocess_exec(
            "java", *JAVA_OPTIONS, "-cp", self._classpath,
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", MAIN_CLASS,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            env=os.environ.copy(),
        )  # fmt: skip
        assert self.process.stdin is not None
        self.process.stdin.write(_properties_text(self.config.properties()).encode())
        self.process.stdin.close()
        streaming = asyncio.get_running_loop().create_future()
        self._output = asyncio.create_task(self._copy_output(streaming))
        try:
            await asyncio.wait_for(asyncio.shield(streaming), timeout)
        except TimeoutError:
            await self.stop()
            raise RuntimeError(f"Debezium not streaming after {timeout} s; {self.log}") from None

    async def _copy_output(self, streaming: asyncio.Future[None]) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        with self.log.open("ab") as log:
            async for line in self.process.stdout:
                log.write(line)
                log.flush()
                if not streaming.done() and line.strip() == READY.encode():
                    streaming.set_result(None)
        if not streaming.done():
            streaming.set_exception(RuntimeError(f"Debezium exited; see {self.log}"))

    async def stop(self, timeout: float = 30) -> None:
        """SIGTERM (the engine stops and drops its slot), then SIGKILL after ``timeout``."""
        if self.process is None or self.process.returncode is not None:
            return
        self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        if self._output is not None:
            await self._output
