"""Projections of the analytics service, each fed by events in the consumer's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.adapters.orm import order_facts_table
from eventing.catalogue import OrderPlaced
from eventing.consumer import ReceivedEvent, Subscription


async def record_order(session: AsyncSession, event: ReceivedEvent[OrderPlaced]) -> None:
    order = event.data
    await session.execute(
        insert(order_facts_table)
        .values(
            order_id=order.order_id,
            customer_id=order.customer_id,
            placed_at=order.placed_at,
            pizzas=sum(line.quantity for line in order.lines),
            total=order.total,
            status="pending",
        )
        .on_conflict_do_nothing()
    )


SUBSCRIPTIONS: list[Subscription] = [
    Subscription("analytics.order_facts", OrderPlaced, record_order),
]


def fact_public(row: Any) -> dict[str, Any]:
    return {
        "order_id": row["order_id"],
        "customer_id": row["customer_id"],
        "placed_at": row["placed_at"],
        "pizzas": row["pizzas"],
        "total": row["total"],
        "status": row["status"],
    }
