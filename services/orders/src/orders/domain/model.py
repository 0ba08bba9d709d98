"""The order aggregate. Standard library and the event catalogue only: no infrastructure."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from eventing.catalogue import EventData, OrderLine, OrderPlaced
from orders.domain.menu import Pizza, Size, unit_price

MAX_PIZZAS_PER_ORDER = 50


class OrderStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    COOKING = "cooking"
    READY = "ready"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    PICKED_UP = "picked_up"
    CANCELLED = "cancelled"


class DomainError(Exception):
    """A request the domain refuses; the message says why."""


@dataclass(frozen=True)
class LineRequest:
    pizza: Pizza
    size: Size
    quantity: int
    extra_toppings: tuple[str, ...] = ()


@dataclass
class Order:
    id: str
    customer_id: str
    lines: tuple[OrderLine, ...]
    total: Decimal
    status: OrderStatus
    placed_at: datetime
    version: int = 0
    events: list[EventData] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def place(
        cls, *, order_id: str, customer_id: str, requests: list[LineRequest], now: datetime
    ) -> Order:
        if not requests:
            raise DomainError("an order needs at least one pizza")
        if sum(request.quantity for request in requests) > MAX_PIZZAS_PER_ORDER:
            raise DomainError(f"an order may have at most {MAX_PIZZAS_PER_ORDER} pizzas")
        lines = tuple(
            OrderLine(
                pizza=request.pizza.name,
                size=request.size.value,
                quantity=request.quantity,
                toppings=request.extra_toppings,
                unit_price=unit_price(request.pizza, request.size, len(request.extra_toppings)),
            )
            for request in requests
        )
        total = sum((line.unit_price * line.quantity for line in lines), Decimal("0.00"))
        order = cls(
            id=order_id,
            customer_id=customer_id,
            lines=lines,
            total=total,
            status=OrderStatus.PENDING,
            placed_at=now,
            version=1,
        )
        order.events.append(
            OrderPlaced(
                order_id=order_id, customer_id=customer_id, lines=lines, total=total, placed_at=now
            )
        )
        return order
