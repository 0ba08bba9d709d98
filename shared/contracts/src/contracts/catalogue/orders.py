"""Events of the order aggregate, on the orders topic, keyed by order id. No personal data:
customers appear only by their pseudonymous id."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.catalogue.base import CatalogueEvent
from contracts.topics import ORDERS

Fulfilment = Literal["delivery", "pickup"]


# An order's tracking token: 192 random bits, URL-safe base64 (32 characters), shown to the
# customer once at placement. Whoever checks one compares its SHA-256 with the order's.
TRACKING_TOKEN_BYTES = 24
_TRACKING_TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")


def new_tracking_token() -> str:
    return secrets.token_urlsafe(TRACKING_TOKEN_BYTES)


def is_tracking_token(text: str) -> bool:
    """Whether ``text`` has the form of a tracking token (a garbled copy has not)."""
    return _TRACKING_TOKEN.fullmatch(text) is not None


def tracking_token_sha256(token: str) -> str:
    """What ``OrderPlaced.tracking_token_sha256`` holds for ``token``: the hex SHA-256 of its
    UTF-8 bytes. The orders service stores the same, and every reader compares against it."""
    return hashlib.sha256(token.encode()).hexdigest()


class OrderLine(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    pizza: str = Field(description="Menu name of the pizza.")
    size: str = Field(description="small, medium or large.")
    quantity: int = Field(ge=1)
    toppings: tuple[str, ...] = Field(default=(), description="Extra toppings.")
    unit_price: Decimal = Field(description="Price of one pizza with its toppings, in EUR.")


class _OrderEvent(CatalogueEvent):
    topic = ORDERS.name
    aggregate = "order"

    order_id: str


class OrderPlaced(_OrderEvent):
    """A customer placed an order; it waits for confirmation."""

    event_type = "com.mariospizzeria.order.placed.v1"

    customer_id: str = Field(description="Pseudonymous customer id (never a name or phone).")
    lines: tuple[OrderLine, ...]
    total: Decimal = Field(description="Order total in EUR.")
    placed_at: datetime
    fulfilment: Fulfilment = Field(default="delivery", description="delivery or pickup.")
    tracking_token_sha256: str | None = Field(
        default=None,
        pattern="^[0-9a-f]{64}$",
        description="SHA-256 (hex) of the order's tracking token, which the customer was shown "
        "once at placement: services the customer asks about the order (notifications) check "
        "the token they present against it. The token is 192 random bits, so its hash reveals "
        "nothing of it to readers of this topic. Absent on orders placed before it was added.",
    )


class OrderConfirmed(_OrderEvent):
    """The order is confirmed (by the customer, staff or a payment) and goes to the kitchen."""

    event_type = "com.mariospizzeria.order.confirmed.v1"

    confirmed_at: datetime
    confirmed_by: str = Field(description="customer, payment, or the staff member's id.")
    customer_id: str
    lines: tuple[OrderLine, ...]
    fulfilment: Fulfilment


class OrderCancelled(_OrderEvent):
    """The order was cancelled while pending or confirmed."""

    event_type = "com.mariospizzeria.order.cancelled.v1"

    cancelled_at: datetime
    reason: str
    previous_status: str


class OrderCookingStarted(_OrderEvent):
    """The kitchen started cooking the order."""

    event_type = "com.mariospizzeria.order.cooking_started.v1"

    started_at: datetime


class OrderReady(_OrderEvent):
    """The order is cooked: ready for pickup or for a driver."""

    event_type = "com.mariospizzeria.order.ready.v1"

    ready_at: datetime
    fulfilment: Fulfilment


class OrderDeparted(_OrderEvent):
    """A driver left with the order.

    Its wire type keeps the name it was first published under (``out_for_delivery``, the status
    it leads to); a new name would be a new type version for every consumer of the stream.
    """

    event_type = "com.mariospizzeria.order.out_for_delivery.v1"

    driver_id: str
    departed_at: datetime


class OrderDelivered(_OrderEvent):
    """The driver handed the order over."""

    event_type = "com.mariospizzeria.order.delivered.v1"

    driver_id: str
    delivered_at: datetime


class OrderPickedUp(_OrderEvent):
    """The customer collected the order."""

    event_type = "com.mariospizzeria.order.picked_up.v1"

    picked_up_at: datetime
