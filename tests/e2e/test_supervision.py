"""Whatever process of the system dies comes back by itself, and serves: every service and
relay runs under deploy/local/supervise.sh, as on the local stack."""

from __future__ import annotations

import asyncio
import time

import httpx

from service_kit.auth import Role
from tests.support.http import answer
from tests.support.lifecycle import Clients, whole_life
from tests.support.load import Http, Timing
from tests.support.metrics import parse, value
from tests.support.polling import eventually
from tests.support.system import PROCESSES, System
from tests.support.tokens import staff


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
        analyst = staff(Role.ANALYST, subject="analyst-ada")

        await eventually(
            lambda: answer(client, f"{system.url('analytics')}/orders/{order_id}", analyst),
            until=lambda status_body: (
                status_body[0] == 200 and status_body[1].get("status") == "delivered"
            ),
            interval=0.2,
            what="analytics: the order delivered",
        )
    sinks = system.sinks
    assert sinks is not None
    await eventually(
        lambda: [email.subject for email in sinks.smtp.received],
        until=lambda subjects: any(order_id[-8:] in subject for subject in subjects),
        interval=0.2,
        what="an email about the order after the restarts",
    )
