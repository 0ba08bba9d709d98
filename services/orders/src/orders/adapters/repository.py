"""Loading and saving orders with SQLAlchemy."""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from eventing.catalogue import OrderLine
from orders.adapters.orm import orders_table
from orders.domain.model import Order, OrderStatus


class ConcurrentUpdate(Exception):
    """The order changed since it was loaded (optimistic version check failed)."""


class OrderRepository(Protocol):
    seen: list[Order]

    async def add(self, order: Order) -> None: ...

    async def get(self, order_id: str, *, for_update: bool = False) -> Order | None: ...


class SqlAlchemyOrderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self.seen: list[Order] = []
        self._loaded_versions: dict[str, int] = {}

    async def add(self, order: Order) -> None:
        await self._session.execute(insert(orders_table).values(**_row(order)))
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

    async def save_changes(self) -> None:
        """Write back every loaded order whose version moved, checking nobody else did."""
        for order in self.seen:
            loaded = self._loaded_versions[order.id]
            if order.version == loaded:
                continue
            result = await self._session.execute(
                update(orders_table)
                .where(orders_table.c.id == order.id, orders_table.c.version == loaded)
                .values(status=order.status.value, version=order.version)
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
    }


def _order(row: Any) -> Order:
    return Order(
        id=row["id"],
        customer_id=row["customer_id"],
        lines=tuple(OrderLine.model_validate(line) for line in row["lines"]),
        total=row["total"],
        status=OrderStatus(row["status"]),
        placed_at=row["placed_at"],
        version=row["version"],
    )
