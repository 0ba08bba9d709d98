"""docker-compose.yml's Kafka cluster, run without Docker: deploy/kafka/compose-broker.sh once for
each of kafka-1, kafka-2 and kafka-3, in the environment its compose service gives it, with what
only a container has moved onto this machine (names to 127.0.0.1, ports, paths). Then the topics
and ACL steps run their compose commands against it: the quorum forms, every topic gets its three
copies in sync, and a relay's producer (idempotent, acks=all) writes as its own principal.

The nodes run the local stack's Kafka jars (``KAFKA_LIBS``, else where stack.sh caches them)
through stand-ins for the two bin scripts of the apache/kafka image that the script calls.
Node N listens on ``TEST_COMPOSE_KAFKA_PORT`` (29592) + 10 * (N - 1) and its controller one port
above, as stack.sh places a cluster's nodes. The cluster is started once for the module and
stopped after it.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from contracts.topics import ALL_TOPICS, ORDERS
from eventing.kafka_security import KafkaSecurity
from eventing.relay import kafka_producer_factory
from tests.support.compose import (
    BROKERS,
    COMPOSE_BROKER,
    KAFKA_TEMPLATE,
    ROOT,
    SERVICES,
    command_of,
    environment_of,
)
from tests.support.deployment import MIN_INSYNC_REPLICAS, REPLICATION_FACTOR, SHARED_KAFKA_VARIABLE

FIRST_PORT = int(os.environ.get("TEST_COMPOSE_KAFKA_PORT", "29592"))
# Three JVMs beside the rest of the suite on a small machine: a smaller heap than compose's.
HEAP = "-Xms128m -Xmx384m"
START_TIMEOUT = 90.0


def kafka_libs() -> Path:
    """The Kafka jars: KAFKA_LIBS, else stack.sh's cache (named after deploy/kafka/pom.xml)."""
    pom = ROOT / "deploy" / "kafka" / "pom.xml"
    found = re.search(r"<kafka\.version>(.*?)</kafka\.version>", pom.read_text())
    assert found is not None
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:10]
    default = ROOT / ".local" / f"kafka-{found.group(1)}-{digest}" / "libs"
    libs = Path(os.environ.get("KAFKA_LIBS", default))
    assert (libs / ".complete").exists(), (
        f"no Kafka jars in {libs}: `make install` (or deploy/local/stack.sh install) resolves "
        "them, or point KAFKA_LIBS at a copy"
    )
    return libs


def kafka_home(directory: Path, libs: Path) -> Path:
    """A stand-in for the image's /opt/kafka: the two bin scripts compose-broker.sh runs, each
    the class its namesake of the distribution runs, with the distribution's variables."""
    bin_dir = directory / "bin"
    bin_dir.mkdir(parents=True)
    java = (
        f'exec java -cp "{libs}/*" -Dlog4j2.configurationFile={ROOT}/deploy/kafka/log4j2.yaml '
        "${KAFKA_HEAP_OPTS:-} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true"
    )
    for script, main in (
        ("kafka-storage.sh", "kafka.tools.StorageTool"),
        ("kafka-server-start.sh", "kafka.Kafka"),
    ):
        (bin_dir / script).write_text(f'#!/usr/bin/env bash\n{java} {main} "$@"\n')
        (bin_dir / script).chmod(0o755)
    return directory


def listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Node:
    name: str
    port: int
    controller_port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None


@dataclass
class Cluster:
    nodes: list[Node]
    # compose's "kafka-2:9092" -> "127.0.0.1:<port>", for every broker.
    addresses: dict[str, str]

    def moved(self, servers: str) -> str:
        """A bootstrap list of docker-compose.yml, as this machine reaches those brokers."""
        return ",".join(self.addresses[server] for server in servers.split(","))

    def client_environment(self, name: str) -> dict[str, str]:
        """The Kafka variables of compose service ``name``, with its brokers moved here."""
        environment = environment_of(name)
        kafka = {key: value for key, value in environment.items() if key.startswith("KAFKA_")}
        return {**kafka, SHARED_KAFKA_VARIABLE: self.moved(environment[SHARED_KAFKA_VARIABLE])}

    def bootstrap(self, name: str) -> str:
        return self.client_environment(name)[SHARED_KAFKA_VARIABLE]

    def security(self, name: str) -> KafkaSecurity:
        """How compose service ``name`` signs in to the brokers: its own principal."""
        environment = self.client_environment(name)
        del environment[SHARED_KAFKA_VARIABLE]
        return KafkaSecurity.model_validate(
            {key.removeprefix("KAFKA_").lower(): value for key, value in environment.items()}
        )

    def kafka_options(self, name: str) -> dict[str, Any]:
        """aiokafka keyword arguments for a client as compose service ``name``."""
        return {"bootstrap_servers": self.bootstrap(name), **self.security(name).client_options()}


def node_environment(node: Node, nodes: dict[str, Node], home: Path, data: Path) -> dict[str, str]:
    environment = environment_of(node.name)
    by_host = {SERVICES[other.name]["hostname"]: other for other in nodes.values()}

    def voter(match: re.Match[str]) -> str:
        # A voter's address is its node's controller listener; compose names it by hostname.
        other = by_host[match.group(2)]
        assert int(match.group(3)) == 9093, match.group(0)
        return f"{match.group(1)}@127.0.0.1:{other.controller_port}"

    voters = re.sub(r"(\d+)@([\w-]+):(\d+)", voter, environment["KAFKA_CONTROLLER_QUORUM_VOTERS"])
    return {
        **environment,
        "KAFKA_CONTROLLER_QUORUM_VOTERS": voters,
        "KAFKA_HEAP_OPTS": HEAP,
        "KAFKA_HOME": str(home),
        "KAFKA_TEMPLATE": str(KAFKA_TEMPLATE),
        "KAFKA_CONFIG_FILE": str(data / "server.properties"),
        "KAFKA_DATA_DIR": str(data / "data"),
        "KAFKA_PORT": str(node.port),
        "KAFKA_CONTROLLER_PORT": str(node.controller_port),
        # Loopback only, not the container's 0.0.0.0: this machine is shared.
        "KAFKA_LISTEN_HOST": "127.0.0.1",
        "KAFKA_ADVERTISED_HOST": "127.0.0.1",
    }


def stop(nodes: list[Node]) -> None:
    # Side by side, as stack.sh stops a cluster: a last node alone waits for a quorum that left.
    running = [node.process for node in nodes if node.process is not None]
    for process in running:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    for process in running:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    directory = tmp_path_factory.mktemp("compose-cluster")
    home = kafka_home(directory / "kafka", kafka_libs())
    nodes = {
        name: Node(
            name,
            port=FIRST_PORT + 10 * index,
            controller_port=FIRST_PORT + 10 * index + 1,
            log=directory / f"{name}.log",
        )
        for index, name in enumerate(BROKERS)
    }
    taken = [
        port
        for node in nodes.values()
        for port in (node.port, node.controller_port)
        if listening(port)
    ]
    assert not taken, f"ports {taken} are in use: move the cluster with TEST_COMPOSE_KAFKA_PORT"
    # Everything the nodes read comes from their compose environment, none from this process's.
    inherited = {key: value for key, value in os.environ.items() if not key.startswith("KAFKA_")}
    try:
        for node in nodes.values():
            data = directory / node.name
            data.mkdir()
            with node.log.open("wb") as log:
                node.process = subprocess.Popen(
                    ["bash", str(COMPOSE_BROKER)],
                    env={**inherited, **node_environment(node, nodes, home, data)},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        # What compose's health checks wait for: every node's client listener.
        deadline = time.monotonic() + START_TIMEOUT
        for node in nodes.values():
            while not listening(node.port):
                assert node.process is not None
                if node.process.poll() is not None:
                    pytest.fail(f"{node.name} exited {node.process.returncode}:\n{tail(node.log)}")
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"{node.name} not listening after {START_TIMEOUT} s:\n{tail(node.log)}"
                    )
                time.sleep(0.2)
        addresses = {f"{name}:9092": f"127.0.0.1:{node.port}" for name, node in nodes.items()}
        yield Cluster(list(nodes.values()), addresses)
    finally:
        stop(list(nodes.values()))


def run_step(cluster: Cluster, name: str) -> subprocess.CompletedProcess[str]:
    """A one-shot step of docker-compose.yml (its entrypoint is the pizzeria CLI), run here."""
    assert SERVICES[name]["entrypoint"] == ["pizzeria"]
    inherited = {key: value for key, value in os.environ.items() if not key.startswith("KAFKA_")}
    return subprocess.run(
        [sys.executable, "-m", "contracts.cli", *command_of(name)],
        env={**inherited, **cluster.client_environment(name)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def set_up(cluster: Cluster) -> Cluster:
    """The cluster after compose's topics and acls steps."""
    for step in ("topics", "acls"):
        result = run_step(cluster, step)
        assert result.returncode == 0, f"{step}: {result.stdout}\n{result.stderr}"
    return cluster


async def test_the_three_nodes_form_one_cluster(cluster: Cluster) -> None:
    admin = AIOKafkaAdminClient(**cluster.kafka_options("topics"))
    await admin.start()
    try:
        described = await admin.describe_cluster()
    finally:
        await admin.close()
    brokers = {broker["node_id"]: broker["port"] for broker in described["brokers"]}
    # Every node registered and unfenced, which only an elected controller quorum does.
    assert brokers == {int(node.name.removeprefix("kafka-")): node.port for node in cluster.nodes}
    assert described["controller_id"] in brokers


async def test_the_topics_step_makes_every_topic_with_three_copies_in_sync(
    set_up: Cluster,
) -> None:
    admin = AIOKafkaAdminClient(**set_up.kafka_options("topics"))
    await admin.start()
    try:
        names = [spec.name for spec in ALL_TOPICS]
        described = {
            topic["topic"]: topic["partitions"] for topic in await admin.describe_topics(names)
        }
        configs = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        )
    finally:
        await admin.close()
    min_insync = {
        topic: {key: value for key, value, *_ in config}["min.insync.replicas"]
        for response in configs
        for _, _, _, topic, config in response.resources
    }
    for spec in ALL_TOPICS:
        partitions = described[spec.name]
        assert len(partitions) == spec.partitions, spec.name
        for partition in partitions:
            assert len(partition["replicas"]) == REPLICATION_FACTOR, (spec.name, partition)
            assert sorted(partition["isr"]) == sorted(partition["replicas"]), (spec.name, partition)
        assert min_insync[spec.name] == str(MIN_INSYNC_REPLICAS), spec.name


async def test_the_orders_relays_producer_writes_as_its_principal(set_up: Cluster) -> None:
    producer = kafka_producer_factory(
        set_up.bootstrap("orders-relay"),
        linger_ms=0,
        client_id="test-compose-cluster",
        security=set_up.security("orders-relay"),
    )()
    await producer.start()
    try:
        sent = await asyncio.wait_for(
            producer.send_and_wait(ORDERS.name, key=b"compose", value=b"{}"), timeout=30
        )
    finally:
        await producer.stop()
    assert sent.offset >= 0
