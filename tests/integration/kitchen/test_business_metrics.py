"""The kitchen's business metrics move after commits, as /metrics shows."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.support.kitchen import KitchenHarness, cancelled, confirmed, line, new_order_id
from tests.support.metrics import Samples, scrape, value


def moved(after: Samples, before: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def test_tickets_cooking_time_and_lateness_are_counted(kitchen: KitchenHarness) -> None:
    cooked, withdrawn, wasted = new_order_id(), new_order_id(), new_order_id()
    before = await scrape(kitchen.client)
    await kitchen.publish_and_wait(
        confirmed(cooked, line(quantity=2)), confirmed(withdrawn), confirmed(wasted)
    )
    after_queueing = await scrape(kitchen.client)
    assert moved(after_queueing, before, "kitchen_tickets_total", outcome="queued") == 3

    for order_id in (cooked, wasted):
        started = await kitchen.client.post(f"/tickets/{order_id}/start", headers=kitchen.chef)
        assert started.status_code == 200, started.text
    ready = await kitchen.client.post(f"/tickets/{cooked}/ready", headers=kitchen.chef)
    assert ready.status_code == 200, ready.text
    # A refused step commits nothing and counts nothing.
    again = await kitchen.client.post(f"/tickets/{cooked}/ready", headers=kitchen.chef)
    assert again.status_code == 409
    await kitchen.publish_and_wait(cancelled(withdrawn), cancelled(wasted))
    after = await scrape(kitchen.client)

    assert moved(after, before, "kitchen_tickets_total", outcome="queued") == 3
    assert moved(after, before, "kitchen_tickets_total", outcome="ready") == 1
    assert moved(after, before, "kitchen_tickets_total", outcome="withdrawn") == 1
    assert moved(after, before, "kitchen_tickets_total", outcome="wasted") == 1
    ticket = ready.json()
    cooking = datetime.fromisoformat(ticket["ready_at"]) - datetime.fromisoformat(
        ticket["started_at"]
    )
    assert moved(after, before, "kitchen_cooking_seconds_count") == 1
    assert moved(after, before, "kitchen_cooking_seconds_sum") == pytest.approx(
        cooking.total_seconds(), abs=1e-3
    )
    assert moved(after, before, "kitchen_lateness_seconds_count") == 1
    # Signed buckets (early is negative), so no _sum: the ticket's lateness is in its bucket.
    lateness = ticket["lateness_seconds"]
    bounds = [-600, -300, -120, -60, -30, 0, 30, 60, 120, 300, 600, 1200, 1800]
    for bound in bounds:
        expected = 1 if lateness <= bound else 0
        assert moved(after, before, "kitchen_lateness_seconds_bucket", le=f"{bound:.1f}") == (
            expected
        ), bound


async def test_a_redelivered_confirmation_queues_no_second_ticket(kitchen: KitchenHarness) -> None:
    order_id = new_order_id()
    before = await scrape(kitchen.client)
    event = confirmed(order_id)
    await kitchen.publish_and_wait((event, "11111111-1111-4111-8111-111111111111"))
    # The same event again (a redelivery), then another event of the same order so we know the
    # duplicate was consumed.
    await kitchen.topic.publish((event, "11111111-1111-4111-8111-111111111111"))
    await kitchen.publish_and_wait(cancelled(order_id))
    after = await scrape(kitchen.client)
    assert moved(after, before, "kitchen_tickets_total", outcome="queued") == 1
    assert moved(after, before, "kitchen_tickets_total", outcome="withdrawn") == 1
