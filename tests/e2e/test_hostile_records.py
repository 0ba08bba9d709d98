"""Hostile records on the orders topic of the running system, while orders flow.

Every kind of tests/support/hostile.py goes onto pizzeria.orders (kind i to partition i % 6, so
every partition has poison ahead of the orders that follow). Then every consumer group of the
topic (kitchen, notifications, analytics) must have dead-lettered each record exactly once, with
its reason, and applied every order placed after them: a kitchen ticket, an in-app message, an
analytics fact. The kitchen is killed and started again while it works through them: it
dead-letters nothing a second time.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import httpx

from contracts.topics import DEAD_LETTERS, ORDERS
from eventing.deadletter import DeadLetter, read_dead_letters
from service_kit.auth import Role
from tests.support.hostile import Hostile, hostile_records, produce_hostile
from tests.support.infra import Infra
from tests.support.polling import eventually
from tests.support.system import System
from tests.support.tokens import staff

GROUPS = ("kitchen", "notifications", "analytics")
ORDER = {
    "customer": {"name": "Rita", "email": "rita@example.com", "address": "Via Roma 1"},
    "lines": [{"pizza": "Margherita", "size": "medium", "quantity": 1}],
}


ANALYST = staff(Role.ANALYST, subject="analyst-hostile")
CHEF = staff(Role.CHEF, subject="chef-hostile")
PATIENCE = 60


async def place_and_confirm(orders: httpx.AsyncClient) -> tuple[str, str]:
    """The order's id and tracking token."""
    placed = await orders.post("/orders", json=ORDER)
    assert placed.status_code == 201, placed.text
    order_id: str = placed.json()["id"]
    token: str = placed.json()["tracking_token"]
    confirmed = await orders.post(
        f"/orders/{order_id}/confirm", headers={"X-Tracking-Token": token}
    )
    assert confirmed.status_code == 200, confirmed.text
    return order_id, token


async def applied_everywhere(system: System, orders: list[tuple[str, str]]) -> None:
    """Each order has its ticket, its in-app message and its analytics fact."""
    async with httpx.AsyncClient(timeout=10) as client:
        for order_id, token in orders:

            async def done(order_id: str = order_id, token: str = token) -> bool:
                ticket = await client.get(
                    f"{system.url('kitchen')}/tickets/{order_id}", headers=CHEF
                )
                messages = await client.get(
                    f"{system.url('notifications')}/orders/{order_id}/messages",
                    headers={"X-Tracking-Token": token},
                )
                fact = await client.get(
                    f"{system.url('analytics')}/orders/{order_id}", headers=ANALYST
                )
                return (
                    ticket.status_code == 200
                    and messages.status_code == 200
                    and bool(messages.json())
                    and fact.status_code == 200
                    and fact.json()["status"] == "confirmed"
                )

            await eventually(
                done,
                timeout=PATIENCE,
                interval=0.2,
                what=f"order {order_id} applied by every consumer",
            )


async def our_dead_letters(infra: Infra, hostile: list[Hostile]) -> list[DeadLetter]:
    keys = {h.key for h in hostile}
    letters = await read_dead_letters(infra.kafka_bootstrap, topic=DEAD_LETTERS.name)
    return [x for x in letters if x.key in keys and x.original_topic == ORDERS.name]


async def test_hostile_records_are_dead_lettered_once_per_group_and_orders_still_flow(
    system: System, infra: Infra
) -> None:
    hostile = hostile_records(f"e2e-{uuid.uuid4().hex[:8]}")
    expected = {h.key: h for h in hostile}
    flowing: list[tuple[str, str]] = []
    stop = asyncio.Event()

    async with httpx.AsyncClient(base_url=system.url("orders"), timeout=10) as orders:

        async def keep_ordering() -> None:
            while not stop.is_set():
                flowing.append(await place_and_confirm(orders))
                await asyncio.sleep(0.2)

        placing = asyncio.create_task(keep_ordering())
        try:
            await eventually(
                lambda: len(flowing) >= 3, timeout=PATIENCE, interval=0.1, what="orders flowing"
            )
            for number, kind in enumerate(hostile):
                await produce_hostile(infra.kafka_bootstrap, ORDERS.name, number % 6, [kind.record])

            # Kill the kitchen as soon as it has dead-lettered one of them, very likely before
            # its offsets are committed: the records it redoes after the restart must find
            # their dead letters recorded and not send them again.
            async def kitchen_began() -> bool:
                return any(x.group == "kitchen" for x in await our_dead_letters(infra, hostile))

            await eventually(
                kitchen_began,
                timeout=PATIENCE,
                interval=0.2,
                what="the kitchen's first dead letter",
            )
            kitchen = system.processes["kitchen"]
            kitchen.kill()
            kitchen.start()
            await kitchen.wait_ready()
        finally:
            stop.set()
            await placing
        after = [await place_and_confirm(orders) for _ in range(6)]

    await applied_everywhere(system, flowing + after)

    async def every_group_done() -> bool:
        return len(await our_dead_letters(infra, hostile)) >= len(GROUPS) * len(hostile)

    await eventually(
        every_group_done, timeout=PATIENCE, interval=0.2, what="every group's dead letters"
    )
    letters = await our_dead_letters(infra, hostile)
    assert Counter((x.group, x.key) for x in letters) == Counter(
        {(group, h.key): 1 for group in GROUPS for h in hostile}
    )
    for letter in letters:
        assert expected[letter.key].reason in letter.reason, (letter.group, letter.reason)
        assert letter.handler == "-" and letter.original_topic == ORDERS.name
