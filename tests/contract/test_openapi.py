"""Every service's OpenAPI document holds: schemathesis, every check, every phase, 0 failures.

Each service runs as a real process on a freshly migrated database (and its consumer on the
real broker), so what schemathesis sees is what a client would.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from eventing.auth import Role
from tests.support.contract import run_schemathesis, staff_token
from tests.support.infra import Infra
from tests.support.processes import ServiceProcess, base_url, service_process
from tests.support.system import migrated_database


def started(infra: Infra, service: str, env: dict[str, str]) -> ServiceProcess:
    url = asyncio.run(migrated_database(infra, service))
    process = service_process(infra, service, url, env)
    process.start()
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(process.ready_url, timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or not process.alive:
            process.terminate()
            raise RuntimeError(f"{service} did not start:\n{process.log_tail()}")
        time.sleep(0.2)


ORDERS_STAFF = staff_token(Role.MANAGER, Role.CHEF, Role.DRIVER)


@pytest.fixture
def orders(infra: Infra) -> Iterator[ServiceProcess]:
    process = started(
        infra,
        "orders",
        {
            "ORDERS_CONSUMER_GROUP": f"contract-{time.time_ns()}",
            # The limits stay on (their 429 is part of the contract) but far above the rate
            # schemathesis sends at, so it tests placement rather than the limiter.
            "ORDERS_PLACEMENTS_PER_CLIENT": "100000/minute",
            "ORDERS_PLACEMENTS_PER_CONTACT": "100000/minute",
            # Inbound CloudEvents authenticate with a bearer token of their own; making it the
            # staff token lets the one Authorization header schemathesis sends serve both.
            "ORDERS_INBOUND_BEARER_TOKEN": ORDERS_STAFF,
        },
    )
    try:
        yield process
    finally:
        process.terminate()


def test_the_orders_api_keeps_its_contract(orders: ServiceProcess) -> None:
    run_schemathesis("orders", base_url(orders), token=ORDERS_STAFF)
