"""Inbound only: events other systems send us over HTTP (``POST /cloudevents`` of the orders API).

We never publish these to Kafka. ``EventData`` still wants a topic and an aggregate; they are
the orders topic and ``order`` (the payment is about an order, and the generated AsyncAPI
document derives the orders topic's key, "order id", from the aggregates on it). Neither is used
for routing. The schema here is the contract the sender must meet.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import AwareDatetime, Field

from contracts.catalogue.base import CatalogueEvent
from contracts.topics import ORDERS


class PaymentSucceeded(CatalogueEvent):
    """Inbound only (never published by us): the payment provider took the money for an order.

    Received over HTTP as a CloudEvent; a payment whose amount matches the order total confirms
    the pending order (``confirmed_by="payment"``).
    """

    event_type = "com.mariospizzeria.payment.succeeded.v1"
    topic = ORDERS.name
    aggregate = "order"

    order_id: str = Field(min_length=1, description="The order the payment is for.")
    amount: Decimal = Field(gt=0, description="Amount paid, in ``currency``.")
    currency: Literal["EUR"] = Field(description="ISO 4217 code; only EUR is accepted.")
    provider_reference: str = Field(
        min_length=1, description="The payment provider's id of the payment."
    )
    paid_at: AwareDatetime = Field(description="When the payment succeeded, with a UTC offset.")
