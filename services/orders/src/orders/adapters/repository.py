"""Loading and saving orders with SQLAlchemy, and the rows of the orders database read as
domain values (by the repository, the other command handlers and the queries alike)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import RowMapping, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.catalogue import OrderLine
from orders.adapters.orm import orders_table
from orders.domain.customers import StoredCustomer
from orders.domain.menu import MenuEntry
from orders.domain.model import Order, OrderStatus


class ConcurrentUpdate(Exception):
    """The order changed since it was loaded (optimistic version check failed)."""


class SqlAlchemyOrderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self.seen: list[Order] = []
        self._loaded_versions: dict[str, int] = {}

    async def add(self, order: Order, *, tracking_token_sha256: str | None = None) -> None:
        await self._session.execute(
            _ADD_ORDER, {**_row(order), "tracking_token_sha256": tracking_token_sha256}
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
        order = order_from_row(row)
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
                _SAVE_ORDER,
                {
                    "order_id": order.id,
                    "loaded_version": loaded,
                    "status": order.status.value,
                    "version": order.version,
                    "updated_at": order.updated_at,
                    "cancel_reason": order.cancel_reason,
                    "driver_id": order.driver_id,
                },
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise ConcurrentUpdate(order.id)
            self._loaded_versions[order.id] = order.version


# Built once (building a statement and its cache key cost more than running it); their
# parameters name the columns written. The WHERE clause's are named apart from the columns.
_ADD_ORDER = insert(orders_table)
_SAVE_ORDER = update(orders_table).where(
    orders_table.c.id == bindparam("order_id"),
    orders_table.c.version == bindparam("loaded_version"),
)


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


def order_from_row(row: RowMapping) -> Order:
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


def customer_from_row(row: RowMapping) -> StoredCustomer:
    return StoredCustomer(
        id=str(row["id"]),
        name=row["name"],
        phone=row["phone"],
        email=row["email"],
        address=row["address"],
        sms_opt_in=row["sms_opt_in"],
        email_opt_in=row["email_opt_in"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        erased_at=row["erased_at"],
        guest=row["guest"],
    )


def menu_entry_from_row(row: RowMapping) -> MenuEntry:
    return MenuEntry(
        name=row["name"],
        base_price=Decimal(row["base_price"]),
        toppings=tuple(row["toppings"]),
        version=row["version"],
        retired_at=row["retired_at"],
    )
