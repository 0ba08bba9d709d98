"""Consuming the orders topic again from the beginning leaves the same kitchen.

One history of order events (confirmations, cancellations of queued tickets, a cancellation of
an order that never reached the kitchen, a placement, a duplicate delivery, a repeated
confirmation) on a six-partition topic is consumed twice, each time with a fresh consumer group
into a fresh database; the tables must be identical. Then a third fresh group re-reads the whole
topic into the first database, whose inbox absorbs every event: nothing changes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from eventing.events import EventData
from tests.support.infra import Infra
from tests.support.kitchen import (
    KitchenHarness,
    OrdersTopic,
    cancelled,
    confirmed,
    line,
    new_order_id,
    placed,
    running_kitchen,
)
from tests.support.polling import eventually

TICKETS = "SELECT * FROM tickets ORDER BY order_id"
CLOCK = "SELECT * FROM kitchen_clock"
INBOX = "SELECT handler, event_id, event_type FROM inbox ORDER BY handler, event_id"
OUTBOX = (
    "SELECT event_id::text, event_type, topic, partition_key, source, aggregate_id, payload "
    "FROM outbox WHERE event_type <> 'com.mariospizzeria.kitchen.estimate_changed.v1' "
    "ORDER BY event_id"
)


def history() -> tuple[list[EventData | tuple[EventData, str]], int]:
    """The events, and how many distinct subscribed events (inbox rows) they make."""
    t0 = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
    orders = [new_order_id() for _ in range(12)]
    pizzas = [1, 3, 2, 5, 1, 1, 4, 2, 2, 1, 6, 3]
    events: list[EventData | tuple[EventData, str]] = []
    for i, (order_id, count) in enumerate(zip(orders, pizzas, strict=True)):
        events.append(placed(order_id))
        events.append(
            confirmed(
                order_id,
                line("Margherita", count),
                at=t0 + timedelta(seconds=40 * i),
                fulfilment="pickup" if i % 3 == 0 else "delivery",
            )
        )
    duplicate = (confirmed(orders[5], at=t0 + timedelta(seconds=200)), "evt-replay-duplicate")
    events += [duplicate, duplicate]
    events.append(confirmed(orders[5], at=t0 + timedelta(seconds=210)))  # again, another id
    for i in (1, 4, 8):
        events.append(cancelled(orders[i], at=t0 + timedelta(seconds=600 + i), reason=f"r{i}"))
    events.append(
        cancelled(new_order_id(), at=t0 + timedelta(seconds=700), previous_status="pending")
    )
    subscribed = 12 + 1 + 1 + 3 + 1  # confirmations, duplicate (once), again, cancellations
    return events, subscribed


async def snapshot(kitchen: KitchenHarness) -> dict[str, Any]:
    outbox = await kitchen.rows(OUTBOX)
    for row in outbox:
        payload = json.loads(row["payload"])
        # The estimate a ticket got *when queued* depends on which other orders (from other
        # partitions) were applied before it; the final estimates are compared in `tickets`.
        payload.pop("estimated_ready_at", None)
        row["payload"] = payload
    return {
        "tickets": await kitchen.rows(TICKETS),
        "clock": await kitchen.rows(CLOCK),
        "inbox": await kitchen.rows(INBOX),
        "outbox": outbox,
    }


async def consume_all(kitchen: KitchenHarness, count: int) -> None:
    await eventually(
        kitchen.inbox_count, until=lambda n: n >= count, timeout=60, what=f"{count} inbox rows"
    )


async def test_consuming_the_topic_again_into_a_fresh_database_gives_the_same_state(
    infra: Infra, orders_topic: OrdersTopic
) -> None:
    events, subscribed = history()
    await orders_topic.publish(*events)

    async with running_kitchen(infra, orders_topic) as first:
        await consume_all(first, subscribed)
        before = await snapshot(first)
        first_url = first.database_url
    async with running_kitchen(infra, orders_topic) as second:
        await consume_all(second, subscribed)
        again = await snapshot(second)

    assert first.settings.consumer_group != second.settings.consumer_group
    assert first.database_url != second.database_url
    assert len(before["tickets"]) == 12
    assert sorted(t["status"] for t in before["tickets"]) == ["queued"] * 9 + ["withdrawn"] * 3
    assert all(
        t["estimated_ready_at"] is not None for t in before["tickets"] if t["status"] == "queued"
    )
    assert len(before["inbox"]) == subscribed
    assert {r["event_type"].rsplit(".", 2)[-2] for r in before["outbox"]} == {
        "ticket_queued",
        "ticket_withdrawn",
    }
    assert again == before

    # A third group re-reads everything into the first database: the inbox absorbs it all.
    # The last event it reads is a cancellation from long ago, so the clock does not move.
    marker = new_order_id()
    await orders_topic.publish(
        cancelled(marker, at=datetime(2020, 1, 1, tzinfo=UTC), previous_status="pending")
    )
    async with running_kitchen(infra, orders_topic, database_url=first_url) as third:
        await consume_all(third, subscribed + 1)
        replayed = await snapshot(third)
    assert replayed["tickets"] == before["tickets"]
    assert replayed["clock"] == before["clock"]
    assert replayed["outbox"] == before["outbox"]
    assert len(replayed["inbox"]) == subscribed + 1
