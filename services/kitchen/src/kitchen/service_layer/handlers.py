"""Event handlers of the kitchen: each applies one event inside the consumer's transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from eventing.catalogue import OrderPlaced
from eventing.consumer import ReceivedEvent, Subscription
from kitchen.adapters.orm import tickets_table
from kitchen.domain.tickets import TicketStatus


async def queue_ticket(session: AsyncSession, event: ReceivedEvent[OrderPlaced]) -> None:
    order = event.data
    await session.execute(
        insert(tickets_table)
        .values(
            order_id=order.order_id,
            pizzas=sum(line.quantity for line in order.lines),
            lines=[line.model_dump(mode="json") for line in order.lines],
            status=TicketStatus.QUEUED.value,
            queued_at=datetime.now(UTC),
        )
        .on_conflict_do_nothing()
    )


SUBSCRIPTIONS: list[Subscription] = [
    Subscription("kitchen.queue_ticket", OrderPlaced, queue_ticket),
]


def ticket_public(row: Any) -> dict[str, Any]:
    return {
        "order_id": row["order_id"],
        "pizzas": row["pizzas"],
        "lines": row["lines"],
        "status": row["status"],
        "queued_at": row["queued_at"],
    }
