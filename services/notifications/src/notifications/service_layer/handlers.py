"""Event handlers of the notifications service."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from eventing.catalogue import OrderPlaced
from eventing.consumer import ReceivedEvent, Subscription
from notifications import metrics
from notifications.adapters.orm import messages_table
from notifications.domain.messages import Channel, order_received_text


async def order_received(session: AsyncSession, event: ReceivedEvent[OrderPlaced]) -> None:
    order = event.data
    written = await session.execute(
        insert(messages_table)
        .values(
            order_id=order.order_id,
            customer_id=order.customer_id,
            channel=Channel.IN_APP.value,
            kind="order_received",
            body=order_received_text(
                order.order_id, order.total, sum(line.quantity for line in order.lines)
            ),
            event_id=event.id,
        )
        .on_conflict_do_nothing()
        .returning(messages_table.c.id)
    )
    if written.first() is not None:  # None: this event's message was written before
        metrics.after_commit(session, lambda: metrics.notification(Channel.IN_APP, "sent"))


SUBSCRIPTIONS: list[Subscription] = [
    Subscription("notifications.order_received.in_app", OrderPlaced, order_received),
]


def message_public(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "order_id": row["order_id"],
        "customer_id": row["customer_id"],
        "channel": row["channel"],
        "kind": row["kind"],
        "body": row["body"],
        "created_at": row["created_at"],
    }
