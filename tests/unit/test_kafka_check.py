"""The broker readiness check: fails fast and with a reason, never hangs, and is cached."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from service_kit import http
from service_kit.http import kafka_check


async def test_an_unreachable_broker_is_not_ready_and_says_so() -> None:
    started = time.monotonic()
    ok, detail = await kafka_check("127.0.0.1:1")()
    assert not ok
    assert detail.startswith("kafka: ")
    assert time.monotonic() - started < 5


class FakeClient:
    created = 0
    hang = False

    def __init__(self, **_: Any) -> None:
        type(self).created += 1
        self.cluster = self

    async def bootstrap(self) -> None:
        if self.hang:
            await asyncio.sleep(3600)

    def brokers(self) -> set[int]:
        return {1}

    async def close(self) -> None:
        pass


@pytest.fixture
def fake_client(monkeypatch: pytest.MonkeyPatch) -> type[FakeClient]:
    FakeClient.created = 0
    FakeClient.hang = False
    monkeypatch.setattr(http, "AIOKafkaClient", FakeClient)
    return FakeClient


async def test_results_are_cached_so_probes_stay_cheap(fake_client: type[FakeClient]) -> None:
    check = kafka_check("broker:9092", cache_seconds=0.3)
    results = await asyncio.gather(*(check() for _ in range(20)))
    assert results == [(True, "kafka: ok (1 broker)")] * 20
    assert fake_client.created == 1
    await asyncio.sleep(0.35)
    await check()
    assert fake_client.created == 2


async def test_a_broker_that_never_answers_times_out(fake_client: type[FakeClient]) -> None:
    fake_client.hang = True
    started = time.monotonic()
    ok, detail = await kafka_check("broker:9092", timeout_seconds=0.2)()
    assert not ok
    assert "no metadata from broker:9092" in detail
    assert time.monotonic() - started < 2
