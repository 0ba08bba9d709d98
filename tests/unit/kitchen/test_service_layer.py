"""The kitchen's event subscriptions and the ids of the events a consumed event causes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from contracts.catalogue import EstimateChanged, OrderCancelled, OrderConfirmed, TicketQueued
from kitchen.service_layer.events import EVENT_HANDLERS
from kitchen.service_layer.unit_of_work import derived_event_id

AT = datetime(2026, 11, 26, 19, 30, 0, 123000, tzinfo=UTC)
CAUSE = "0198c5a0-0000-7000-8000-000000000001"


def test_the_subscription_names_stay_the_inbox_keys_they_were() -> None:
    assert [(handler.name, handler.event) for handler in EVENT_HANDLERS] == [
        ("kitchen.queue_confirmed_order", OrderConfirmed),
        ("kitchen.withdraw_cancelled_order", OrderCancelled),
    ]


def test_a_caused_event_id_is_fixed_by_its_cause_type_and_order() -> None:
    queued = TicketQueued(order_id="order-1", pizzas=2, estimated_ready_at=AT, queued_at=AT)
    moved = EstimateChanged(
        order_id="order-2", estimated_ready_at=AT, previous_estimated_ready_at=AT
    )
    # The ids a replay re-publishes: downstream inboxes drop them only if they never change.
    assert derived_event_id(CAUSE, queued, "order-1", AT) == uuid.UUID(
        "01a21956-0f3b-7611-b518-6718e196f1b7"
    )
    assert derived_event_id(CAUSE, moved, "order-2", AT) == uuid.UUID(
        "01a21956-0f3b-7014-9cc5-0d9cdd5c7b9e"
    )
    assert derived_event_id(CAUSE, queued, "order-2", AT) != derived_event_id(
        CAUSE, queued, "order-1", AT
    )
    assert derived_event_id(CAUSE, queued, "order-1", AT).int >> 80 == int(AT.timestamp() * 1000)
