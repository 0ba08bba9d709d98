"""Reads: what the API shows of orders, customers and the menu, each in a short read-only
transaction of its own. No command goes through here, and nothing here changes a row."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.catalogue import tracking_token_sha256
from orders.adapters.orm import customers_table, extra_toppings_table, menu_table, orders_table
from orders.adapters.repository import customer_from_row, menu_entry_from_row, order_from_row
from orders.domain.customers import CustomerNotFound, StoredCustomer
from orders.domain.menu import MenuEntry
from orders.domain.model import Order, OrderNotFound, OrderStatus

Sessions = async_sessionmaker[AsyncSession]


@dataclass(frozen=True)
class OrderQuery:
    """List filters (staff: every order; a customer: ``customer_id``, theirs); ``after`` is the
    cursor (placed_at, id) of the last order seen."""

    customer_id: str | None = None
    statuses: tuple[OrderStatus, ...] = ()
    placed_from: datetime | None = None
    placed_until: datetime | None = None
    after: tuple[datetime, str] | None = None
    limit: int = 50


async def get_order(sessions: Sessions, order_id: str) -> Order:
    """Raises ``OrderNotFound``."""
    async with sessions() as session:
        row = (
            (await session.execute(select(orders_table).where(orders_table.c.id == order_id)))
            .mappings()
            .first()
        )
    if row is None:
        raise OrderNotFound(order_id)
    return order_from_row(row)


async def customer_of(sessions: Sessions, order_id: str) -> str | None:
    """The order's customer (or guest) id, None if there is no such order."""
    async with sessions() as session:
        customer_id: str | None = await session.scalar(
            select(orders_table.c.customer_id).where(orders_table.c.id == order_id)
        )
    return customer_id


async def tracking_token_matches(sessions: Sessions, order_id: str, token: str) -> bool:
    async with sessions() as session:
        stored: str | None = await session.scalar(
            select(orders_table.c.tracking_token_sha256).where(orders_table.c.id == order_id)
        )
    return stored is not None and secrets.compare_digest(stored, tracking_token_sha256(token))


async def list_orders(sessions: Sessions, query: OrderQuery) -> list[Order]:
    """One page of orders, newest first."""
    statement = select(orders_table)
    if query.customer_id is not None:
        statement = statement.where(orders_table.c.customer_id == query.customer_id)
    if query.statuses:
        statement = statement.where(orders_table.c.status.in_([s.value for s in query.statuses]))
    if query.placed_from is not None:
        statement = statement.where(orders_table.c.placed_at >= query.placed_from)
    if query.placed_until is not None:
        statement = statement.where(orders_table.c.placed_at < query.placed_until)
    if query.after is not None:
        placed_at, order_id = query.after
        statement = statement.where(
            or_(
                orders_table.c.placed_at < placed_at,
                and_(orders_table.c.placed_at == placed_at, orders_table.c.id < order_id),
            )
        )
    statement = statement.order_by(orders_table.c.placed_at.desc(), orders_table.c.id.desc())
    async with sessions() as session:
        rows = (await session.execute(statement.limit(query.limit))).mappings().all()
    return [order_from_row(row) for row in rows]


async def get_customer(sessions: Sessions, customer_id: str) -> StoredCustomer:
    """Everything stored about the customer or guest, e.g. to answer a subject-access request.

    Raises ``CustomerNotFound``.
    """
    async with sessions() as session:
        row = (
            (
                await session.execute(
                    select(customers_table).where(customers_table.c.id == customer_id)
                )
            )
            .mappings()
            .first()
        )
    if row is None:
        raise CustomerNotFound(customer_id)
    return customer_from_row(row)


async def active_pizzas(sessions: Sessions) -> list[MenuEntry]:
    """The pizzas on the menu now, by name."""
    async with sessions() as session:
        rows = (
            await session.execute(
                select(menu_table)
                .where(menu_table.c.retired_at.is_(None))
                .order_by(menu_table.c.name)
            )
        ).mappings()
        return [menu_entry_from_row(row) for row in rows]


async def active_extra_toppings(sessions: Sessions) -> list[str]:
    """The extra toppings that can be ordered now, by name."""
    async with sessions() as session:
        rows = await session.execute(
            select(extra_toppings_table.c.name)
            .where(extra_toppings_table.c.retired_at.is_(None))
            .order_by(extra_toppings_table.c.name)
        )
        return [row[0] for row in rows]
