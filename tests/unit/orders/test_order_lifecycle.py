"""Every transition of the order aggregate, allowed and refused, and the event each records."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from contracts.catalogue import (
    OrderCancelled,
    OrderConfirmed,
    OrderCookingStarted,
    OrderDelivered,
    OrderDeparted,
    OrderPickedUp,
    OrderPlaced,
    OrderReady,
)
from eventing.events import EventData
from orders.domain.menu import SEED_MENU, Size
from orders.domain.model import (
    MAX_PIZZAS_PER_ORDER,
    DomainError,
    InvalidTransition,
    LineRequest,
    Order,
    OrderStatus,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
MARGHERITA = SEED_MENU[0]
S = OrderStatus

Action = Callable[[Order], None]
ACTIONS: dict[str, Action] = {
    "confirm": lambda o: o.confirm(by="customer", now=NOW),
    "cancel": lambda o: o.cancel(reason="changed my mind", now=NOW),
    "start_cooking": lambda o: o.start_cooking(at=NOW),
    "mark_ready": lambda o: o.mark_ready(at=NOW),
    "depart": lambda o: o.depart(driver_id="driver-1", now=NOW),
    "deliver": lambda o: o.deliver(driver_id="driver-1", now=NOW),
    "pick_up": lambda o: o.pick_up(now=NOW),
}
# The only allowed transitions, per fulfilment: (from, action) -> (to, event type).
Transitions = dict[tuple[OrderStatus, str], tuple[OrderStatus, type[EventData]]]
ALLOWED: Transitions = {
    (S.PENDING, "confirm"): (S.CONFIRMED, OrderConfirmed),
    (S.PENDING, "cancel"): (S.CANCELLED, OrderCancelled),
    (S.CONFIRMED, "cancel"): (S.CANCELLED, OrderCancelled),
    (S.CONFIRMED, "start_cooking"): (S.COOKING, OrderCookingStarted),
    (S.COOKING, "mark_ready"): (S.READY, OrderReady),
}
DELIVERY_ONLY: Transitions = {
    (S.READY, "depart"): (S.OUT_FOR_DELIVERY, OrderDeparted),
    (S.OUT_FOR_DELIVERY, "deliver"): (S.DELIVERED, OrderDelivered),
}
PICKUP_ONLY: Transitions = {(S.READY, "pick_up"): (S.PICKED_UP, OrderPickedUp)}
PATH = {
    "delivery": ["confirm", "start_cooking", "mark_ready", "depart", "deliver"],
    "pickup": ["confirm", "start_cooking", "mark_ready", "pick_up"],
}


def placed(fulfilment: str = "delivery") -> Order:
    return Order.place(
        order_id="order-1",
        customer_id="cust-1",
        requests=[LineRequest(MARGHERITA, Size.LARGE, 2, ("olives",))],
        now=NOW,
        fulfilment=fulfilment,  # type: ignore[arg-type]
    )


def order_in(status: OrderStatus, fulfilment: str) -> Order:
    order = placed(fulfilment)
    if status is S.CANCELLED:
        ACTIONS["cancel"](order)
    else:
        for action in PATH[fulfilment]:
            if order.status is status:
                break
            ACTIONS[action](order)
    assert order.status is status
    order.events.clear()
    return order


def reachable(fulfilment: str) -> list[OrderStatus]:
    finals = [S.DELIVERED] if fulfilment == "delivery" else [S.PICKED_UP]
    return [S.PENDING, S.CONFIRMED, S.COOKING, S.READY, *finals, S.CANCELLED]


def test_placing_records_order_placed_with_prices_from_the_menu() -> None:
    order = placed()
    assert order.status is S.PENDING
    assert order.version == 1
    [event] = order.events
    assert isinstance(event, OrderPlaced)
    # large Margherita 12.99 × 1.25 = 16.2375 → 16.24, + 1.50 for olives; two of them.
    assert event.lines[0].unit_price == Decimal("17.74")
    assert event.total == order.total == Decimal("35.48")
    assert event.customer_id == "cust-1"


@pytest.mark.parametrize("fulfilment", ["delivery", "pickup"])
def test_every_transition_is_allowed_or_refused_as_the_lifecycle_says(fulfilment: str) -> None:
    allowed = {**ALLOWED, **(DELIVERY_ONLY if fulfilment == "delivery" else PICKUP_ONLY)}
    for status in reachable(fulfilment):
        for name, action in ACTIONS.items():
            order = order_in(status, fulfilment)
            version = order.version
            if (status, name) in allowed:
                target, event_type = allowed[(status, name)]
                action(order)
                assert order.status is target, (status, name)
                assert order.version == version + 1
                [event] = order.events
                assert isinstance(event, event_type)
                assert event.model_dump()["order_id"] == "order-1"
            else:
                with pytest.raises(InvalidTransition) as refused:
                    action(order)
                assert refused.value.current is status, (status, name)
                assert status.value in str(refused.value)
                assert order.status is status and order.version == version and not order.events


def test_cancel_keeps_the_reason_and_the_previous_status() -> None:
    order = order_in(S.CONFIRMED, "delivery")
    order.cancel(reason="  out of dough  ", now=NOW)
    [event] = order.events
    assert isinstance(event, OrderCancelled)
    assert (event.reason, event.previous_status) == ("out of dough", "confirmed")
    assert order.cancel_reason == "out of dough"


def test_cancel_without_a_reason_is_refused() -> None:
    with pytest.raises(DomainError, match="reason"):
        placed().cancel(reason="   ", now=NOW)


def test_only_the_driver_who_left_delivers() -> None:
    order = order_in(S.OUT_FOR_DELIVERY, "delivery")
    with pytest.raises(InvalidTransition, match="another driver"):
        order.deliver(driver_id="driver-2", now=NOW)


def test_an_empty_order_and_too_many_pizzas_are_refused() -> None:
    with pytest.raises(DomainError, match="at least one"):
        Order.place(order_id="o", customer_id="c", requests=[], now=NOW)
    too_many = [LineRequest(MARGHERITA, Size.SMALL, MAX_PIZZAS_PER_ORDER + 1)]
    with pytest.raises(DomainError, match="at most 50"):
        Order.place(order_id="o", customer_id="c", requests=too_many, now=NOW)
