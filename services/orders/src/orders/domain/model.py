"""The order aggregate and its lifecycle. Standard library and the event catalogue only.

    pending ──confirm──▶ confirmed ──(kitchen) start──▶ cooking ──(kitchen) ready──▶ ready
       │                    │                                                     │      │
       └──────cancel────────┴──▶ cancelled                  (driver) depart ◀─────┘      │ pickup
                                                                   ▼                     ▼
                                                          out_for_delivery ──▶ delivered   picked_up

Each transition bumps the version and records exactly one event; a refused transition raises
``InvalidTransition`` naming the current status and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from contracts.catalogue import (
    Fulfilment,
    OrderCancelled,
    OrderConfirmed,
    OrderCookingStarted,
    OrderDelivered,
    OrderDeparted,
    OrderLine,
    OrderPickedUp,
    OrderPlaced,
    OrderReady,
)
from eventing.events import EventData
from orders.domain.menu import Pizza, Size, unit_price

MAX_PIZZAS_PER_ORDER = 50
MAX_LINES_PER_ORDER = MAX_PIZZAS_PER_ORDER  # every line has at least one pizza
MAX_EXTRA_TOPPINGS = 10  # per pizza


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


class OrderNotFound(LookupError):
    pass


class InvalidTransition(DomainError):
    def __init__(self, current: OrderStatus, action: str, reason: str) -> None:
        super().__init__(f"cannot {action} an order that is {current.value}: {reason}")
        self.current = current
        self.action = action
        self.reason = reason


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
    fulfilment: Fulfilment = "delivery"
    version: int = 0
    updated_at: datetime | None = None
    cancel_reason: str | None = None
    driver_id: str | None = None
    events: list[EventData] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def place(
        cls,
        *,
        order_id: str,
        customer_id: str,
        requests: list[LineRequest],
        now: datetime,
        fulfilment: Fulfilment = "delivery",
        tracking_token_sha256: str | None = None,
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
            fulfilment=fulfilment,
        )
        order._record(
            OrderPlaced(
                order_id=order_id,
                customer_id=customer_id,
                lines=lines,
                total=total,
                placed_at=now,
                fulfilment=fulfilment,
                tracking_token_sha256=tracking_token_sha256,
            ),
            OrderStatus.PENDING,
            now,
        )
        return order

    # -------------------------------------------------------------- transitions
    def confirm(self, *, by: str, now: datetime) -> None:
        self._require("confirm", {OrderStatus.PENDING}, "only a pending order can be confirmed")
        self._record(
            OrderConfirmed(
                order_id=self.id,
                confirmed_at=now,
                confirmed_by=by,
                customer_id=self.customer_id,
                lines=self.lines,
                fulfilment=self.fulfilment,
            ),
            OrderStatus.CONFIRMED,
            now,
        )

    def cancel(self, *, reason: str, now: datetime) -> None:
        reason = reason.strip()
        if not reason:
            raise DomainError("a cancellation needs a reason")
        self._require(
            "cancel",
            {OrderStatus.PENDING, OrderStatus.CONFIRMED},
            "the kitchen has started; only pending or confirmed orders can be cancelled",
        )
        previous = self.status
        self.cancel_reason = reason
        self._record(
            OrderCancelled(
                order_id=self.id, cancelled_at=now, reason=reason, previous_status=previous.value
            ),
            OrderStatus.CANCELLED,
            now,
        )

    def start_cooking(self, *, at: datetime) -> None:
        self._require("start cooking", {OrderStatus.CONFIRMED}, "cooking follows confirmation")
        self._record(OrderCookingStarted(order_id=self.id, started_at=at), OrderStatus.COOKING, at)

    def mark_ready(self, *, at: datetime) -> None:
        self._require("mark ready", {OrderStatus.COOKING}, "an order is ready after cooking")
        self._record(
            OrderReady(order_id=self.id, ready_at=at, fulfilment=self.fulfilment),
            OrderStatus.READY,
            at,
        )

    def depart(self, *, driver_id: str, now: datetime) -> None:
        self._require("depart with", {OrderStatus.READY}, "a driver takes ready orders only")
        if self.fulfilment != "delivery":
            raise InvalidTransition(self.status, "depart with", "the customer picks this order up")
        self.driver_id = driver_id
        self._record(
            OrderDeparted(order_id=self.id, driver_id=driver_id, departed_at=now),
            OrderStatus.OUT_FOR_DELIVERY,
            now,
        )

    def deliver(self, *, driver_id: str, now: datetime) -> None:
        self._require("deliver", {OrderStatus.OUT_FOR_DELIVERY}, "it is not out for delivery")
        if driver_id != self.driver_id:
            raise InvalidTransition(self.status, "deliver", "another driver has this order")
        self._record(
            OrderDelivered(order_id=self.id, driver_id=driver_id, delivered_at=now),
            OrderStatus.DELIVERED,
            now,
        )

    def pick_up(self, *, now: datetime) -> None:
        self._require("pick up", {OrderStatus.READY}, "only a ready order can be collected")
        if self.fulfilment != "pickup":
            raise InvalidTransition(self.status, "pick up", "this order is for delivery")
        self._record(OrderPickedUp(order_id=self.id, picked_up_at=now), OrderStatus.PICKED_UP, now)

    # -------------------------------------------------------------- internals
    def _require(self, action: str, allowed: set[OrderStatus], reason: str) -> None:
        if self.status not in allowed:
            raise InvalidTransition(self.status, action, reason)

    def _record(self, event: EventData, status: OrderStatus, now: datetime) -> None:
        self.status = status
        self.version += 1
        self.updated_at = now
        self.events.append(event)
