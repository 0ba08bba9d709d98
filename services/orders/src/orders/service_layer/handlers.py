"""Application handlers of the orders service: small async functions over a unit of work."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from eventing.ids import uuid7
from orders.domain.model import LineRequest, Order
from orders.service_layer.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class PlaceOrder:
    customer_id: str
    lines: list[LineRequest]


async def place_order(command: PlaceOrder, uow: UnitOfWork) -> Order:
    async with uow:
        order = Order.place(
            order_id=str(uuid7()),
            customer_id=command.customer_id,
            requests=command.lines,
            now=datetime.now(UTC),
        )
        await uow.orders.add(order)
        await uow.commit()
    return order


async def get_order(order_id: str, uow: UnitOfWork) -> Order | None:
    async with uow:
        return await uow.orders.get(order_id)
