"""The production path to the broker: SASL_SSL, with a certificate signed by the stack's own CA
(``KAFKA_SECURITY=SASL_SSL``), tried on a broker of its own beside the test stack's."""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaConnectionError, KafkaError

from eventing.kafka_security import KafkaSecurity
from tests.support.infra import ROOT, STACK, Infra
from tests.support.polling import eventually

TLS_ENV = {
    "STACK_DIR": str(ROOT / ".local" / "test-stack-tls"),
    "KAFKA_PORT": os.environ.get("TEST_TLS_KAFKA_PORT", "29392"),
    "KAFKA_CONTROLLER_PORT": os.environ.get("TEST_TLS_KAFKA_CONTROLLER_PORT", "29393"),
    "KAFKA_SECURITY": "SASL_SSL",
}


def stack(*args: str) -> None:
    result = subprocess.run(
        ["bash", str(STACK), *args],
        env={**os.environ, **TLS_ENV},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"


@pytest.fixture(scope="module")
def tls_broker(infra: Infra) -> Iterator[tuple[str, dict[str, str], Path]]:
    """(bootstrap, principal -> password, CA file) of a fresh SASL_SSL broker."""
    kafka_dir = Path(TLS_ENV["STACK_DIR"]) / "kafka"
    stack("kafka-stop")
    shutil.rmtree(kafka_dir, ignore_errors=True)
    stack("kafka-start")
    try:
        passwords = dict(
            line.split(" ", 1) for line in (kafka_dir / "credentials").read_text().splitlines()
        )
        yield f"127.0.0.1:{TLS_ENV['KAFKA_PORT']}", passwords, kafka_dir / "tls" / "ca.crt"
    finally:
        stack("kafka-stop")


async def connect(bootstrap: str, options: dict[str, object]) -> None:
    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=5000, **options)
    try:
        await asyncio.wait_for(client.bootstrap(), 20)
    finally:
        await client.close()


def admin_security(passwords: dict[str, str], cafile: Path | None) -> KafkaSecurity:
    return KafkaSecurity(
        security_protocol="SASL_SSL",
        sasl_username="admin",
        sasl_password=passwords["admin"],
        ssl_cafile=str(cafile) if cafile is not None else None,
    )


async def test_a_client_trusting_the_stacks_ca_works_over_sasl_ssl(
    tls_broker: tuple[str, dict[str, str], Path],
) -> None:
    bootstrap, passwords, cafile = tls_broker
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, **admin_security(passwords, cafile).client_options()
    )
    await admin.start()
    try:
        await admin.create_topics([NewTopic("tls.check", 1, replication_factor=1)])
        # The broker learns of a new topic from the controller a moment after it answers.
        await eventually(
            admin.list_topics,
            until=lambda topics: "tls.check" in topics,
            timeout=10,
            interval=0.2,
            what="tls.check among the topics",
        )
    finally:
        await admin.close()


async def test_a_client_that_does_not_trust_the_ca_is_refused(
    tls_broker: tuple[str, dict[str, str], Path],
) -> None:
    bootstrap, passwords, _ = tls_broker
    # The system's trust store does not know the stack's CA: the handshake fails.
    options = admin_security(passwords, None).client_options()
    with pytest.raises((KafkaConnectionError, KafkaError, ssl.SSLError, TimeoutError)):
        await connect(bootstrap, options)


async def test_sasl_without_tls_is_refused_by_the_tls_listener(
    tls_broker: tuple[str, dict[str, str], Path],
) -> None:
    bootstrap, passwords, _ = tls_broker
    plain = KafkaSecurity(
        security_protocol="SASL_PLAINTEXT",
        sasl_username="admin",
        sasl_password=passwords["admin"],
    )
    with pytest.raises((KafkaConnectionError, KafkaError, TimeoutError)):
        await connect(bootstrap, plain.client_options())
