"""The orders API served by two worker processes behind one port (``ORDERS_HTTP_WORKERS=2``), a
real process on the real broker and database: both serve, ``/metrics`` reports the instance
whichever worker answers, and a worker SIGKILLed while orders are placed is replaced with no
order refused."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.infra import Infra
from tests.support.lifecycle import new_order
from tests.support.metrics import Samples, scrape, value
from tests.support.polling import eventually
from tests.support.processes import ServiceProcess, base_url, http_workers, service_process
from tests.support.system import migrated_database


@pytest.fixture
async def orders_with_two_workers(infra: Infra) -> AsyncIterator[ServiceProcess]:
    process = service_process(
        infra, "orders", await migrated_database(infra, "orders"), {"ORDERS_HTTP_WORKERS": "2"}
    )
    process.start()
    try:
        await process.wait_ready()
        await eventually(
            lambda: http_workers(process),
            until=lambda workers: len(workers) == 2,
            timeout=30,
            what="two workers",
        )
        await both_ready(process)
        yield process
    finally:
        process.terminate()


async def both_ready(process: ServiceProcess, in_a_row: int = 12) -> None:
    """Until /readyz answers 200 ``in_a_row`` times, each on a connection of its own: whichever
    worker accepts answers for itself, and the second one's consumer joins the group after the
    first one's."""
    async with httpx.AsyncClient(base_url=base_url(process), timeout=5) as client:

        async def ready_in_a_row() -> bool:
            for _ in range(in_a_row):
                answer = await client.get("/readyz", headers={"Connection": "close"})
                if answer.status_code != 200:
                    return False
            return True

        await eventually(ready_in_a_row, timeout=60, interval=0.5, what="both workers ready")


async def place(client: httpx.AsyncClient) -> int:
    """One placement on a connection of its own; its status."""
    response = await client.post(
        "/orders",
        json=new_order(),
        headers={"Idempotency-Key": str(uuid.uuid4()), "Connection": "close"},
    )
    return response.status_code


async def scrapes(client: httpx.AsyncClient, times: int) -> list[Samples]:
    """``times`` scrapes, each on a connection of its own: answered by either worker."""
    return [await scrape(client) for _ in range(times)]


async def test_each_worker_serves_and_every_scrape_reports_both(
    orders_with_two_workers: ServiceProcess,
) -> None:
    process = orders_with_two_workers
    workers = http_workers(process)
    async with httpx.AsyncClient(
        base_url=base_url(process), timeout=15, headers={"Connection": "close"}
    ) as client:
        # Each worker in turn is the only one accepting: the other is frozen.
        for frozen, placements in zip(workers, (3, 4), strict=True):
            process.signal_worker(frozen, signal.SIGSTOP)
            try:
                assert [await place(client) for _ in range(placements)] == [201] * placements
            finally:
                process.signal_worker(frozen, signal.SIGCONT)
        for samples in await scrapes(client, 8):
            assert value(samples, "orders_placed_total") == 7
            assert value(samples, "http_workers_started_total") == 2


async def test_a_worker_killed_while_orders_are_placed_is_replaced_and_none_is_refused(
    orders_with_two_workers: ServiceProcess,
) -> None:
    process = orders_with_two_workers
    killed = http_workers(process)[0]
    statuses: list[int] = []
    cut: list[str] = []  # requests the killed worker was serving: the client retries them
    stop = asyncio.Event()

    async def customer() -> None:
        async with httpx.AsyncClient(base_url=base_url(process), timeout=15) as client:
            while not stop.is_set():
                key, body = str(uuid.uuid4()), new_order()
                while True:
                    try:
                        response = await client.post(
                            "/orders", json=body, headers={"Idempotency-Key": key}
                        )
                    except httpx.TransportError as error:
                        cut.append(type(error).__name__)
                        continue
                    statuses.append(response.status_code)
                    break

    customers = [asyncio.create_task(customer()) for _ in range(4)]
    try:
        await asyncio.sleep(1)
        process.signal_worker(killed, signal.SIGKILL)
        replaced = await eventually(
            lambda: http_workers(process),
            until=lambda now: len(now) == 2 and killed not in now,
            timeout=30,
            what="the killed worker replaced",
        )
        # The replacement built its app (counted in the instance's metrics), then serves too.
        async with httpx.AsyncClient(base_url=base_url(process), timeout=15) as client:
            await eventually(
                lambda: scrape(client),
                until=lambda samples: value(samples, "http_workers_started_total") == 3,
                timeout=60,
                interval=0.5,
                what="the replacement worker started",
            )
        await both_ready(process)
    finally:
        stop.set()
        await asyncio.gather(*customers)
    # None refused, none a 5xx; 200 is a retry answered with the order the dead worker made.
    assert statuses and set(statuses) <= {200, 201}, statuses
    assert len(cut) <= 4, cut  # at most what the dead worker had in hand, one per customer
    async with httpx.AsyncClient(base_url=base_url(process), timeout=15) as client:
        for samples in await scrapes(client, 6):
            # The dead worker's placements still count: the instance's total is every order.
            assert value(samples, "orders_placed_total") == len(statuses)
            assert value(samples, "http_workers_started_total") == 3
    assert process.alive and len(replaced) == 2
