"""Tickets from order events on a real topic: queued on confirmation, withdrawn or wasted on
cancellation in every state, applied once however often delivered, and written in one
transaction with the kitchen's events and the inbox."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest

from kitchen.domain.estimates import round_up_to_minute
from service_kit.auth import Role
from tests.support.kitchen import (
    KitchenHarness,
    cancelled,
    confirmed,
    line,
    new_order_id,
    placed,
)


async def test_a_confirmed_order_becomes_a_queued_ticket(kitchen: KitchenHarness) -> None:
    order_id = new_order_id()
    confirmed_at = datetime.now(UTC).replace(microsecond=0)
    await kitchen.topic.publish(placed(order_id))  # tickets come from confirmation only
    await kitchen.publish_and_wait(
        confirmed(
            order_id,
            line("Margherita", 2, "large"),
            line("Hawaiian", 1, "small"),
            at=confirmed_at,
            fulfilment="pickup",
        )
    )
    ticket = await kitchen.ticket(order_id)
    assert ticket is not None
    assert ticket["status"] == "queued"
    assert ticket["pizzas"] == 3
    assert ticket["fulfilment"] == "pickup"
    assert ticket["lines"] == [
        {"pizza": "Margherita", "size": "large", "quantity": 2, "toppings": []},
        {"pizza": "Hawaiian", "size": "small", "quantity": 1, "toppings": []},
    ]
    assert ticket["queued_at"] == confirmed_at.isoformat().replace("+00:00", "Z")
    # An empty kitchen: 6 + 2 × 3 = 12 minutes from the confirmation.
    estimate = round_up_to_minute(confirmed_at + timedelta(minutes=12))
    assert ticket["estimated_ready_at"] == estimate.isoformat().replace("+00:00", "Z")
    assert (ticket["started_at"], ticket["ready_at"], ticket["cook"]) == (None, None, None)

    [queued] = await kitchen.outbox("ticket_queued")
    assert queued["topic"] == "pizzeria.kitchen"
    assert queued["partition_key"] == order_id
    assert queued["source"] == "/mariospizzeria/kitchen"
    assert _json(queued["payload"]) == {
        "order_id": order_id,
        "pizzas": 3,
        "estimated_ready_at": ticket["estimated_ready_at"],
        "queued_at": ticket["queued_at"],
    }


async def test_placed_orders_are_ignored(kitchen: KitchenHarness) -> None:
    order_id, later = new_order_id(), new_order_id()
    await kitchen.topic.publish(placed(order_id))
    await kitchen.publish_and_wait(confirmed(later))
    assert await kitchen.ticket(order_id) is None
    assert await kitchen.ticket(later) is not None


async def test_cancelling_a_queued_ticket_withdraws_it(kitchen: KitchenHarness) -> None:
    order_id = new_order_id()
    await kitchen.publish_and_wait(confirmed(order_id, line(quantity=2)))
    await kitchen.publish_and_wait(cancelled(order_id, reason="ordered twice"))
    ticket = await kitchen.ticket(order_id)
    assert ticket is not None
    assert (ticket["status"], ticket["cancel_reason"], ticket["pizzas_wasted"]) == (
        "withdrawn",
        "ordered twice",
        0,
    )
    [withdrawn] = await kitchen.outbox("ticket_withdrawn")
    payload = _json(withdrawn["payload"])
    assert payload["wasted"] is False and payload["pizzas_wasted"] == 0
    assert payload["reason"] == "ordered twice" and payload["order_id"] == order_id
    queue = (await kitchen.client.get("/queue", headers=kitchen.chef)).json()
    assert order_id not in [t["order_id"] for t in queue["tickets"]]


async def test_cancelling_a_cooking_ticket_records_waste(
    kitchen: KitchenHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kitchen.handlers")
    order_id = new_order_id()
    await kitchen.publish_and_wait(confirmed(order_id, line(quantity=3)))
    started = await kitchen.client.post(f"/tickets/{order_id}/start", headers=kitchen.chef)
    assert started.status_code == 200, started.text
    await kitchen.publish_and_wait(cancelled(order_id, reason="customer left"))
    ticket = await kitchen.ticket(order_id)
    assert ticket is not None
    assert (ticket["status"], ticket["pizzas_wasted"], ticket["cancel_reason"]) == (
        "wasted",
        3,
        "customer left",
    )
    [withdrawn] = await kitchen.outbox("ticket_withdrawn")
    payload = _json(withdrawn["payload"])
    assert (payload["wasted"], payload["pizzas_wasted"]) == (True, 3)
    assert any(
        r.levelno == logging.WARNING and "3 pizzas wasted" in r.getMessage() for r in caplog.records
    )
    # Wasted is final: it frees its slot and cannot be marked ready.
    queue = (await kitchen.client.get("/queue", headers=kitchen.chef)).json()
    assert queue["cooking"] == 0
    refused = await kitchen.client.post(f"/tickets/{order_id}/ready", headers=kitchen.chef)
    assert refused.status_code == 409
    assert refused.json()["current_status"] == "wasted"


async def test_cancelling_a_ready_ticket_leaves_it_ready_with_a_log(
    kitchen: KitchenHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kitchen.handlers")
    order_id = new_order_id()
    await kitchen.publish_and_wait(confirmed(order_id))
    for step in ("start", "ready"):
        response = await kitchen.client.post(f"/tickets/{order_id}/{step}", headers=kitchen.chef)
        assert response.status_code == 200, response.text
    await kitchen.publish_and_wait(cancelled(order_id, reason="too slow"))
    ticket = await kitchen.ticket(order_id)
    assert ticket is not None
    assert (ticket["status"], ticket["cancel_reason"], ticket["pizzas_wasted"]) == (
        "ready",
        "too slow",
        0,
    )
    assert await kitchen.outbox("ticket_withdrawn") == []
    assert any(
        r.levelno == logging.WARNING and "stays ready" in r.getMessage() for r in caplog.records
    )


async def test_a_cancellation_without_a_ticket_is_logged_and_the_consumer_goes_on(
    kitchen: KitchenHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kitchen.handlers")
    never_confirmed, missed, after = new_order_id(), new_order_id(), new_order_id()
    await kitchen.publish_and_wait(
        cancelled(never_confirmed, previous_status="pending"),
        cancelled(missed, previous_status="confirmed"),
        confirmed(after),
    )
    assert await kitchen.ticket(never_confirmed) is None
    assert await kitchen.ticket(missed) is None
    assert (await kitchen.ticket(after) or {}).get("status") == "queued"
    messages = {(r.levelno, r.getMessage()) for r in caplog.records}
    assert any(lvl == logging.INFO and never_confirmed in msg for lvl, msg in messages)
    assert any(lvl == logging.WARNING and missed in msg for lvl, msg in messages)
    assert await kitchen.outbox("ticket_withdrawn") == []


async def test_an_event_delivered_twice_takes_effect_once(
    kitchen: KitchenHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kitchen.handlers")
    order_id = new_order_id()
    confirmation = (confirmed(order_id, line(quantity=2)), "evt-confirm-twice")
    cancellation = (cancelled(order_id), "evt-cancel-twice")
    # Events of one order are consumed in order: once the last one is applied, so are both
    # copies before it. The last is a second confirmation (another event id) of the same order.
    await kitchen.publish_and_wait(confirmation, confirmation, cancellation, cancellation)
    await kitchen.publish_and_wait((confirmed(order_id), "evt-confirm-again"))
    rows = await kitchen.rows("SELECT status FROM tickets WHERE order_id = $1", order_id)
    assert rows == [{"status": "withdrawn"}]
    assert len(await kitchen.outbox("ticket_queued")) == 1
    assert len(await kitchen.outbox("ticket_withdrawn")) == 1
    inbox = await kitchen.rows("SELECT handler, event_id FROM inbox ORDER BY event_id")
    assert inbox == [
        {"handler": "kitchen.withdraw_cancelled_order", "event_id": "evt-cancel-twice"},
        {"handler": "kitchen.queue_confirmed_order", "event_id": "evt-confirm-again"},
        {"handler": "kitchen.queue_confirmed_order", "event_id": "evt-confirm-twice"},
    ]
    assert any("already has a ticket" in r.getMessage() for r in caplog.records)


async def test_kitchen_events_commit_in_the_same_transaction_as_the_change(
    kitchen: KitchenHarness,
) -> None:
    """xmin is the id of the transaction that wrote a row: the ticket, its event and (for a
    consumed event) the inbox entry share one."""
    order_id = new_order_id()
    [event_id] = await kitchen.publish_and_wait(confirmed(order_id))
    [ticket] = await kitchen.rows(
        "SELECT xmin::text AS xmin FROM tickets WHERE order_id = $1", order_id
    )
    [inbox] = await kitchen.rows(
        "SELECT xmin::text AS xmin FROM inbox WHERE event_id = $1", event_id
    )
    [queued] = await kitchen.outbox("ticket_queued")
    assert ticket["xmin"] == queued["xmin"] == inbox["xmin"]

    started = await kitchen.client.post(f"/tickets/{order_id}/start", headers=kitchen.chef)
    assert started.status_code == 200
    [ticket] = await kitchen.rows(
        "SELECT xmin::text AS xmin, status FROM tickets WHERE order_id = $1", order_id
    )
    [cooking] = await kitchen.outbox("cooking_started")
    assert ticket["status"] == "cooking" and ticket["xmin"] == cooking["xmin"]
    payload = _json(cooking["payload"])
    assert payload["cook"] == "chef-mario"
    assert payload["estimated_ready_at"] == started.json()["estimated_ready_at"]

    # A refused change leaves neither a state change nor an event behind.
    other = new_order_id()
    await kitchen.publish_and_wait(confirmed(other))
    manager = kitchen.token(Role.MANAGER, subject="manager-1")
    refused = await kitchen.client.post(f"/tickets/{other}/ready", headers=manager)
    assert refused.status_code == 409
    assert await kitchen.outbox("order_ready") == []
    assert (await kitchen.ticket(other) or {}).get("status") == "queued"


def _json(payload: object) -> dict[str, object]:
    value = json.loads(payload) if isinstance(payload, str) else payload
    assert isinstance(value, dict)
    return value
