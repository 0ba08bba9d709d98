"""Events of the order aggregate, on the orders topic, keyed by order id."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from eventing.catalogue.base import EventData
from eventing.topics import ORDERS


class OrderLine(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    pizza: str = Field(description="Menu name of the pizza.")
    size: str = Field(description="small, medium or large.")
    quantity: int = Field(ge=1)
    toppings: tuple[str, ...] = Field(default=(), description="Extra toppings.")
    unit_price: Decimal = Field(description="Price of one pizza with its toppings, in EUR.")


class _OrderEvent(EventData):
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
