"""What the API reads and changes: customers' in-app messages and the staff's delivery view."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notifications.adapters.orm import deliveries_table, messages_table, orders_table
from notifications.domain.messages import Channel, DeliveryStatus, OrderOwner


class MessageNotFound(Exception):
    """No such in-app message for that customer."""


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
) -> list[dict[str, Any]]:
    async with sessions() as session:
        rows = await session.execute(
            select(messages_table)
            .where(messages_table.c.order_id == order_id)
            .order_by(messages_table.c.id)
        )
        return [dict(row) for row in rows.mappings()]


async def customer_messages(
    sessions: async_sessionmaker[AsyncSession],
    customer_id: str,
    *,
    include_dismissed: bool,
    unread_only: bool,
    limit: int,
) -> list[dict[str, Any]]:
    query = select(messages_table).where(messages_table.c.customer_id == customer_id)
    if not include_dismissed:
        query = query.where(messages_table.c.dismissed_at.is_(None))
    if unread_only:
        query = query.where(messages_table.c.read_at.is_(None))
    async with sessions() as session:
        rows = await session.execute(query.order_by(messages_table.c.id.desc()).limit(limit))
        return [dict(row) for row in rows.mappings()]


async def mark_message(
    sessions: async_sessionmaker[AsyncSession], customer_id: str, message_id: int, column: str
) -> dict[str, Any]:
    """Set ``read_at`` or ``dismissed_at`` (first time only); raises MessageNotFound."""
    if column not in {"read_at", "dismissed_at"}:
        raise ValueError(column)
    mine = (messages_table.c.id == message_id) & (messages_table.c.customer_id == customer_id)
    values: dict[str, Any] = {column: datetime.now(UTC)}
    async with sessions() as session, session.begin():
        await session.execute(
            update(messages_table)
            .where(mine, getattr(messages_table.c, column).is_(None))
            .values(**values)
        )
        row = (await session.execute(select(messages_table).where(mine))).mappings().first()
    if row is None:
        raise MessageNotFound(message_id)
    return dict(row)


async def deliveries(
    sessions: async_sessionmaker[AsyncSession],
    *,
    order_id: str | None,
    status: DeliveryStatus | None,
    channel: Channel | None,
    limit: int,
) -> list[dict[str, Any]]:
    query = select(deliveries_table)
    if order_id is not None:
        query = query.where(deliveries_table.c.order_id == order_id)
    if status is not None:
        query = query.where(deliveries_table.c.status == status.value)
    if channel is not None:
        query = query.where(deliveries_table.c.channel == channel.value)
    async with sessions() as session:
        rows = await session.execute(query.order_by(deliveries_table.c.id).limit(limit))
        return [dict(row) for row in rows.mappings()]
