"""Events of the kitchen, on the kitchen topic, keyed by order id.

A ticket's life as the kitchen publishes it: ``TicketQueued`` (from the order's confirmation),
any number of ``EstimateChanged``, then ``KitchenCookingStarted`` and ``KitchenOrderReady`` — or
``TicketWithdrawn`` when the order is cancelled before it is ready. Estimates are whole minutes
(rounded up); ``KitchenCookingStarted.estimated_ready_at`` supersedes earlier estimates.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from contracts.catalogue.base import CatalogueEvent
from contracts.topics import KITCHEN


class _KitchenEvent(CatalogueEvent):
    topic = KITCHEN.name
    aggregate = "ticket"

    order_id: str


class TicketQueued(_KitchenEvent):
    """A confirmed order's ticket joined the kitchen's queue."""

    event_type = "com.mariospizzeria.kitchen.ticket_queued.v1"

    pizzas: int = Field(ge=0, description="Pizzas on the ticket.")
    estimated_ready_at: datetime = Field(
        description="When the order should be ready, given the queue at the time."
    )
    queued_at: datetime = Field(description="When the order was confirmed: the queue's order.")


class EstimateChanged(_KitchenEvent):
    """A queued ticket's estimated ready time moved by at least a minute."""

    event_type = "com.mariospizzeria.kitchen.estimate_changed.v1"

    estimated_ready_at: datetime
    previous_estimated_ready_at: datetime


class TicketWithdrawn(_KitchenEvent):
    """The order was cancelled before its pizzas were ready: its ticket left the queue.

    ``wasted`` is true when cooking had started: those pizzas are thrown away.
    """

    event_type = "com.mariospizzeria.kitchen.ticket_withdrawn.v1"

    wasted: bool = Field(description="Cooking had started, so the pizzas are wasted.")
    pizzas_wasted: int = Field(ge=0, description="0 unless wasted.")
    reason: str = Field(description="The cancellation's reason.")
    withdrawn_at: datetime = Field(description="When the order was cancelled.")


class KitchenCookingStarted(_KitchenEvent):
    """A cook started on the order's ticket."""

    event_type = "com.mariospizzeria.kitchen.cooking_started.v1"

    cook: str = Field(description="Staff id of the cook.")
    started_at: datetime
    estimated_ready_at: datetime | None = Field(
        default=None, description="started_at plus the cook time, rounded up to the minute."
    )


class KitchenOrderReady(_KitchenEvent):
    """The order's pizzas are done."""

    event_type = "com.mariospizzeria.kitchen.order_ready.v1"

    ready_at: datetime
    estimated_ready_at: datetime | None = Field(
        default=None, description="What the kitchen had estimated, to measure lateness."
    )
    lateness_seconds: int | None = Field(
        default=None,
        description="ready_at minus estimated_ready_at in seconds: positive late, negative early.",
    )
