"""/readyz of a real consuming service follows the broker: 503 naming Kafka while it is stopped."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from tests.support.infra import Infra
from tests.support.polling import eventually
from tests.support.processes import service_process
from tests.support.system import migrated_database


async def readyz(client: httpx.AsyncClient, url: str) -> tuple[int, dict[str, Any]]:
    response = await client.get(url)
    body: dict[str, Any] = response.json()
    return response.status_code, body


async def wait_for_status(
    client: httpx.AsyncClient, url: str, status: int, timeout: float
) -> tuple[float, dict[str, Any]]:
    """Poll /readyz until it answers ``status``; returns how long that took and the body."""
    started = time.monotonic()

    async def answer() -> tuple[int, dict[str, Any]]:
        try:
            return await readyz(client, url)
        except httpx.HTTPError as error:
            raise AssertionError(f"/readyz must always answer, and promptly: {error!r}") from error

    _, body = await eventually(
        answer,
        until=lambda last: last[0] == status,
        timeout=timeout,
        interval=0.5,
        what=f"/readyz {status}",
    )
    return time.monotonic() - started, body


@pytest.mark.fault
async def test_readyz_turns_503_while_the_broker_is_down_and_200_after(infra: Infra) -> None:
    if not infra.can_control_kafka:
        raise RuntimeError(
            f"this test stops the broker; it needs TEST_INFRA=local, not {infra.mode}"
        )
    service = service_process(
        infra, "notifications", await migrated_database(infra, "notifications")
    )
    service.start()
    broker_stopped = False
    # /readyz has to answer well inside this, broker or not (the Kafka check caps itself at 3 s).
    async with httpx.AsyncClient(timeout=10) as client:
        try:
            await service.wait_ready()
            status, body = await readyz(client, service.ready_url)
            assert status == 200, body
            assert body["checks"]["kafka"]["ok"] is True

            await asyncio.to_thread(infra.kafka_stop)
            broker_stopped = True
            took, body = await wait_for_status(client, service.ready_url, 503, timeout=15)
            assert body["status"] == "unready"
            assert body["checks"]["kafka"]["ok"] is False, body
            assert body["checks"]["kafka"]["detail"].startswith("kafka: "), body
            assert body["checks"]["database"]["ok"] is True, body
            print(f"/readyz turned 503 {took:.1f}s after the broker stopped: {body['checks']}")

            await asyncio.to_thread(infra.kafka_start)
            broker_stopped = False
            took, body = await wait_for_status(client, service.ready_url, 200, timeout=60)
            assert all(check["ok"] for check in body["checks"].values()), body
            print(f"/readyz was 200 again {took:.1f}s after the broker started")
        finally:
            if broker_stopped:
                await asyncio.to_thread(infra.kafka_start)
            service.terminate()
