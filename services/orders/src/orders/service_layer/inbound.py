"""CloudEvents other systems send us (a payment provider's "payment succeeded"), received once.

An event is identified by its (source, id), as CloudEvents prescribes. Receiving one inserts it
into ``inbound_events`` in the same transaction that applies its effect, so a redelivery finds
the row and changes nothing, and a failure before commit leaves neither the row nor the effect:
the sender's retry is then processed afresh.

Outcomes that are not the sender's fault (an unknown or cancelled order, a payment for an order
confirmed already) are stored with the event and answered as accepted: the event was durably
received and retrying it would not help. Only the types in ``INBOUND_TYPES`` are accepted; our
own outbound types (order.placed...) are never taken from outside.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert

from contracts.catalogue import PaymentSucceeded
from eventing.events import EventData
from orders import metrics
from orders.adapters.orm import inbound_events_table
from orders.domain.model import OrderStatus
from orders.service_layer.unit_of_work import UnitOfWork

log = logging.getLogger("orders.inbound")

INBOUND_TYPES: dict[str, type[EventData]] = {PaymentSucceeded.event_type: PaymentSucceeded}
APPLIED = "applied"


class UnknownEventType(LookupError):
    """The event's type is not one we accept from outside."""

    def __init__(self, event_type: str) -> None:
        accepted = ", ".join(sorted(INBOUND_TYPES))
        super().__init__(f"event type {event_type!r} is not accepted here; accepted: {accepted}")
        self.event_type = event_type


@dataclass(frozen=True)
class InboundEvent:
    """A CloudEvent as received: its identity, type and data (a JSON object, as sent)."""

    source: str
    id: str
    type: str
    data: dict[str, Any]
    subject: str | None = None


@dataclass(frozen=True)
class Receipt:
    duplicate: bool
    outcome: str


def validate(event: InboundEvent) -> EventData:
    """The event's typed data. Raises ``UnknownEventType`` or pydantic's ``ValidationError``."""
    model = INBOUND_TYPES.get(event.type)
    if model is None:
        raise UnknownEventType(event.type)
    return model.model_validate(event.data)


async def receive(event: InboundEvent, uow: UnitOfWork) -> Receipt:
    """Record the event and apply its effect in one transaction, unless it was received before.

    Validates first (see ``validate``), so invalid events are neither stored nor applied.
    """
    payload = validate(event)
    async with uow:
        inserted = await uow.session.execute(
            insert(inbound_events_table)
            .values(
                source=event.source,
                id=event.id,
                type=event.type,
                subject=event.subject,
                data=event.data,
                outcome="received",
            )
            # A concurrent delivery of the same event waits here for the first to commit.
            .on_conflict_do_nothing(
                index_elements=[inbound_events_table.c.source, inbound_events_table.c.id]
            )
            .returning(inbound_events_table.c.id)
        )
        if inserted.scalar_one_or_none() is None:
            stored = await uow.session.execute(
                select(inbound_events_table.c.outcome).where(
                    inbound_events_table.c.source == event.source,
                    inbound_events_table.c.id == event.id,
                )
            )
            return Receipt(duplicate=True, outcome=stored.scalar_one())
        outcome = await _apply(payload, uow)
        await uow.session.execute(
            update(inbound_events_table)
            .where(
                inbound_events_table.c.source == event.source,
                inbound_events_table.c.id == event.id,
            )
            .values(outcome=outcome)
        )
        await uow.commit()
    if outcome == APPLIED and isinstance(payload, PaymentSucceeded):
        metrics.order_transitioned(OrderStatus.CONFIRMED)  # the payment confirmed its order
    if outcome != APPLIED:
        log.warning("inbound event %s from %s not applied: %s", event.id, event.source, outcome)
    return Receipt(duplicate=False, outcome=outcome)


async def _apply(payload: EventData, uow: UnitOfWork) -> str:
    if isinstance(payload, PaymentSucceeded):
        return await _payment_succeeded(payload, uow)
    raise AssertionError(f"no effect defined for {payload.event_type}")  # pragma: no cover


async def _payment_succeeded(payment: PaymentSucceeded, uow: UnitOfWork) -> str:
    """Confirm the pending order the payment is for, if the amount is its total."""
    order = await uow.orders.get(payment.order_id, for_update=True)
    if order is None:
        return f"ignored: order {payment.order_id!r} is unknown"
    if order.status is OrderStatus.CANCELLED:
        return "ignored: order is cancelled"
    if order.status is not OrderStatus.PENDING:
        return f"ignored: order is already {order.status.value}"
    if payment.amount != order.total:
        return (
            f"rejected: amount {payment.amount} {payment.currency} does not match "
            f"order total {order.total} EUR"
        )
    order.confirm(by="payment", now=datetime.now(UTC))
    return APPLIED
