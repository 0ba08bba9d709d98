"""What the API reads: customers' in-app messages, who an order's are, the staff's deliveries."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notifications.adapters.orm import deliveries_table, messages_table, orders_table
from notifications.adapters.repository import delivery_from_row, message_from_row
from notifications.domain.messages import Channel, Delivery, DeliveryStatus, Message, OrderOwner


async def order_owner(
    sessions: async_sessionmaker[AsyncSession], order_id: str
) -> OrderOwner | None:
    """The order's customer and tracking token hash, or None if no event of it was read yet."""
    async with sessions() as session:
        row = (
            await session.execute(
                select(orders_table.c.customer_id, orders_table.c.tracking_token_sha256).where(
                    orders_table.c.order_id == order_id
                )
            )
        ).first()
    return None if row is None else OrderOwner(row.customer_id, row.tracking_token_sha256)


async def order_messages(
    sessions: async_sessionmaker[AsyncSession], order_id: str
) -> list[Message]:
    async with sessions() as session:
        rows = await session.execute(
            select(messages_table)
            .where(messages_table.c.order_id == order_id)
            .order_by(messages_table.c.id)
        )
        return [message_from_row(row) for row in rows.mappings()]


async def customer_messages(
    sessions: async_sessionmaker[AsyncSession],
    customer_id: str,
    *,
    include_dismissed: bool,
    unread_only: bool,
    limit: int,
) -> list[Message]:
    query = select(messages_table).where(messages_table.c.customer_id == customer_id)
    if not include_dismissed:
        query = query.where(messages_table.c.dismissed_at.is_(None))
    if unread_only:
        query = query.where(messages_table.c.read_at.is_(None))
    async with sessions() as session:
        rows = await session.execute(query.order_by(messages_table.c.id.desc()).limit(limit))
        return [message_from_row(row) for row in rows.mappings()]


async def deliveries(
    sessions: async_sessionmaker[AsyncSession],
    *,
    order_id: str | None,
    status: DeliveryStatus | None,
    channel: Channel | None,
    limit: int,
) -> list[Delivery]:
    query = select(deliveries_table)
    if order_id is not None:
        query = query.where(deliveries_table.c.order_id == order_id)
    if status is not None:
        query = query.where(deliveries_table.c.status == status.value)
    if channel is not None:
        query = query.where(deliveries_table.c.channel == channel.value)
    async with sessions() as session:
        rows = await session.execute(query.order_by(deliveries_table.c.id).limit(limit))
        return [delivery_from_row(row) for row in rows.mappings()]
