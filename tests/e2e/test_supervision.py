"""Whatever process of the system dies comes back by itself, and serves: every service and
relay runs under deploy/local/supervise.sh, as on the local stack."""

from __future__ import annotations

import asyncio
import time

import httpx

from bench.lifecycle import Clients, bearer, whole_life
from bench.load import Http, Timing
from service_kit.auth import Role
from tests.support.metrics import parse, value
from tests.support.system import PROCESSES, System


async def test_every_kind_of_process_killed_comes_back_serving(system: System) -> None:
    restarts_before = {name: system.processes[name].restarts for name in PROCESSES}
    killed = {name: system.processes[name].service_pid() for name in PROCESSES}
    for name in PROCESSES:
        system.processes[name].crash()  # SIGKILL; nothing in this test starts anything again

    await asyncio.gather(*(system.processes[name].wait_ready(timeout=90) for name in PROCESSES))
    async with httpx.AsyncClient(timeout=5) as client:
        for name in PROCESSES:
            process = system.processes[name]
            assert process.service_pid() not in (None, killed[name]), name
            assert process.restarts == restarts_before[name] + 1, process.log_tail()
            metrics = parse((await client.get(f"{system.url(name)}/metrics")).text)
            assert value(metrics, "supervisor_restarts_total") == restarts_before[name] + 1, name

        # Serving: an order through its whole life touches the orders API and relay, the kitchen
        # and its relay; the notifications and analytics consumers then see it.
        async with (
            Http(system.url("orders"), timeout=10) as orders,
            Http(system.url("kitchen"), timeout=10) as kitchen,
        ):
            order_id = await whole_life(
                Clients(orders, kitchen), Timing(time.perf_counter()), patience=90
            )
        analyst = bearer(Role.ANALYST, "analyst-ada")
        deadline = time.monotonic() + 30
        while True:
            fact = await client.get(f"{system.url('analytics')}/orders/{order_id}", headers=analyst)
            if fact.status_code == 200 and fact.json().get("status") == "delivered":
                break
            assert time.monotonic() < deadline, f"analytics: {fact.status_code} {fact.text}"
            await asyncio.sleep(0.2)
    assert system.sinks is not None
    deadline = time.monotonic() + 30
    while not any(order_id[-8:] in email.subject for email in system.sinks.smtp.received):
        assert time.monotonic() < deadline, "no email about the order after the restarts"
        await asyncio.sleep(0.2)
