"""Loading and saving orders with SQLAlchemy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.catalogue import OrderLine
from orders.adapters.orm import orders_table
from orders.domain.model import Order, OrderStatus


class ConcurrentUpdate(Exception):
    """The order changed since it was loaded (optimistic version check failed)."""


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


class SqlAlchemyOrderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self.seen: list[Order] = []
        self._loaded_versions: dict[str, int] = {}

    async def add(self, order: Order, *, tracking_token_sha256: str | None = None) -> None:
        await self._session.execute(
            insert(orders_table).values(**_row(order), tracking_token_sha256=tracking_token_sha256)
        )
        self._loaded_versions[order.id] = order.version
        self.seen.append(order)

    async def get(self, order_id: str, *, for_update: bool = False) -> Order | None:
        query = select(orders_table).where(orders_table.c.id == order_id)
        if for_update:
            query = query.with_for_update()
        row = (await self._session.execute(query)).mappings().first()
        if row is None:
            return None
        order = _order(row)
        self._loaded_versions[order.id] = order.version
        self.seen.append(order)
        return order

    async def tracking_token_sha256(self, order_id: str) -> str | None:
        return (
            await self._session.execute(
                select(orders_table.c.tracking_token_sha256).where(orders_table.c.id == order_id)
            )
        ).scalar_one_or_none()

    async def list(self, query: OrderQuery) -> list[Order]:
        statement = select(orders_table)
        if query.customer_id is not None:
            statement = statement.where(orders_table.c.customer_id == query.customer_id)
        if query.statuses:
            statement = statement.where(
                orders_table.c.status.in_([s.value for s in query.statuses])
            )
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
        rows = (await self._session.execute(statement.limit(query.limit))).mappings()
        return [_order(row) for row in rows]

    async def save_changes(self) -> None:
        """Write back every loaded order whose version moved, checking nobody else did."""
        for order in self.seen:
            loaded = self._loaded_versions[order.id]
            if order.version == loaded:
                continue
            result = await self._session.execute(
                update(orders_table)
                .where(orders_table.c.id == order.id, orders_table.c.version == loaded)
                .values(
                    status=order.status.value,
                    version=order.version,
                    updated_at=order.updated_at,
                    cancel_reason=order.cancel_reason,
                    driver_id=order.driver_id,
                )
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise ConcurrentUpdate(order.id)
            self._loaded_versions[order.id] = order.version


def _row(order: Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "customer_id": order.customer_id,
        "lines": [line.model_dump(mode="json") for line in order.lines],
        "total": order.total,
        "status": order.status.value,
        "placed_at": order.placed_at,
        "version": order.version,
        "updated_at": order.updated_at or order.placed_at,
        "fulfilment": order.fulfilment,
        "cancel_reason": order.cancel_reason,
        "driver_id": order.driver_id,
    }


def _order(row: Any) -> Order:
    return Order(
        id=row["id"],
        customer_id=row["customer_id"],
        lines=tuple(OrderLine.model_validate(line) for line in row["lines"]),
        total=row["total"],
        status=OrderStatus(row["status"]),
        placed_at=row["placed_at"],
        fulfilment=row["fulfilment"],
        version=row["version"],
        updated_at=row["updated_at"],
        cancel_reason=row["cancel_reason"],
        driver_id=row["driver_id"],
    )
