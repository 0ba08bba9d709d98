"""What the analytics service does with events: each fills its own columns of the order's fact.

Every handler is an idempotent upsert, keyed by order id, of the columns that only its event type
fills; so an order's row is the same whatever order its events arrive in (an order's kitchen
events may be read before its own events, which travel on another topic), and the consumer's
inbox makes each event count once. The status is derived from the row's milestones by the same
statement that writes them (``STATUS_PRECEDENCE``, applied in SQL to the stored row).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, bindparam, case, func
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.adapters.orm import order_facts_table, order_lines_table
from analytics.domain.facts import (
    STATUS_PRECEDENCE,
    Milestones,
    Status,
    derive_status,
    is_on_time,
)
from contracts.catalogue import (
    KitchenCookingStarted,
    KitchenOrderReady,
    OrderCancelled,
    OrderConfirmed,
    OrderCookingStarted,
    OrderDelivered,
    OrderDeparted,
    OrderLine,
    OrderPickedUp,
    OrderPlaced,
    OrderReady,
    TicketQueued,
    TicketWithdrawn,
)
from eventing.consumer import ReceivedEvent
from service_kit.handlers import EventHandler

facts = order_facts_table.c


def milestones_of(row: Mapping[str, Any]) -> Milestones:
    """The milestones of a fact row, or of the columns one write fills (absent: not reached)."""
    return Milestones(
        placed_at=row.get("placed_at"),
        confirmed_at=row.get("confirmed_at"),
        cooking_started_at=row.get("kitchen_started_at") or row.get("cooking_started_at"),
        ready_at=row.get("kitchen_ready_at") or row.get("order_ready_at"),
        departed_at=row.get("departed_at"),
        delivered_at=row.get("delivered_at"),
        picked_up_at=row.get("picked_up_at"),
        cancelled_at=row.get("cancelled_at"),
    )


def _status_after(written: tuple[str, ...], excluded: Any) -> ColumnElement[str]:
    """The status of a stored row once the columns ``written`` are applied to it:
    ``STATUS_PRECEDENCE`` over the row's milestones, taking the new value of each."""

    def column(name: str) -> ColumnElement[Any]:
        return excluded[name] if name in written else facts[name]

    milestones: dict[str, ColumnElement[Any]] = {
        "cooking_started_at": func.coalesce(
            column("kitchen_started_at"), column("cooking_started_at")
        ),
        "ready_at": func.coalesce(column("kitchen_ready_at"), column("order_ready_at")),
    }
    return case(
        *(
            ((milestones[name] if name in milestones else column(name)).is_not(None), status.value)
            for name, status in STATUS_PRECEDENCE
        ),
        else_=Status.UNKNOWN.value,
    )


@functools.cache
def _fill_statement(written: tuple[str, ...]) -> Insert:
    """The upsert of the columns ``written``, built once per set of columns: building it (the
    ``excluded`` alias proxies every column of the table) cost more than executing it."""
    values = {name: bindparam(name, type_=facts[name].type) for name in ("order_id", "status")}
    values |= {name: bindparam(name, type_=facts[name].type) for name in written}
    statement = insert(order_facts_table).values(values)
    return statement.on_conflict_do_update(
        index_elements=[facts.order_id],
        set_={
            **{name: statement.excluded[name] for name in written},
            "status": _status_after(written, statement.excluded),
        },
    )


async def _fill(session: AsyncSession, order_id: str, **columns: Any) -> None:
    """Set ``columns`` of the order's fact (creating the row) and its status, in one statement."""
    status = derive_status(milestones_of(columns)).value
    await session.execute(
        _fill_statement(tuple(sorted(columns))),
        {"order_id": order_id, "status": status, **columns},
    )


async def _lines(session: AsyncSession, order_id: str, lines: tuple[OrderLine, ...]) -> None:
    await session.execute(
        insert(order_lines_table)
        .values(
            [
                {
                    "order_id": order_id,
                    "line_no": number,
                    "pizza": line.pizza,
                    "size": line.size,
                    "quantity": line.quantity,
                    "toppings": list(line.toppings),
                    "unit_price": line.unit_price,
                }
                for number, line in enumerate(lines)
            ]
        )
        .on_conflict_do_nothing()
    )


def _pizzas(lines: tuple[OrderLine, ...]) -> int:
    return sum(line.quantity for line in lines)


async def order_placed(session: AsyncSession, event: ReceivedEvent[OrderPlaced], _: None) -> None:
    order = event.data
    await _fill(
        session,
        order.order_id,
        customer_id=order.customer_id,
        fulfilment=order.fulfilment,
        placed_at=order.placed_at,
        total=order.total,
        pizzas=_pizzas(order.lines),
    )
    if order.lines:
        await _lines(session, order.order_id, order.lines)


async def order_confirmed(
    session: AsyncSession, event: ReceivedEvent[OrderConfirmed], _: None
) -> None:
    # Customer, lines and fulfilment repeat OrderPlaced's: they are taken from there only.
    data = event.data
    await _fill(
        session, data.order_id, confirmed_at=data.confirmed_at, confirmed_by=data.confirmed_by
    )


async def order_cancelled(
    session: AsyncSession, event: ReceivedEvent[OrderCancelled], _: None
) -> None:
    data = event.data
    await _fill(
        session,
        data.order_id,
        cancelled_at=data.cancelled_at,
        cancel_reason=data.reason,
        cancelled_from=data.previous_status,
    )


async def order_cooking_started(
    session: AsyncSession, event: ReceivedEvent[OrderCookingStarted], _: None
) -> None:
    await _fill(session, event.data.order_id, cooking_started_at=event.data.started_at)


async def order_ready(session: AsyncSession, event: ReceivedEvent[OrderReady], _: None) -> None:
    await _fill(session, event.data.order_id, order_ready_at=event.data.ready_at)


async def order_departed(
    session: AsyncSession, event: ReceivedEvent[OrderDeparted], _: None
) -> None:
    data = event.data
    await _fill(session, data.order_id, driver_id=data.driver_id, departed_at=data.departed_at)


async def order_delivered(
    session: AsyncSession, event: ReceivedEvent[OrderDelivered], _: None
) -> None:
    # The driver is OrderDeparted's (the same one hands the order over).
    await _fill(session, event.data.order_id, delivered_at=event.data.delivered_at)


async def order_picked_up(
    session: AsyncSession, event: ReceivedEvent[OrderPickedUp], _: None
) -> None:
    await _fill(session, event.data.order_id, picked_up_at=event.data.picked_up_at)


async def ticket_queued(session: AsyncSession, event: ReceivedEvent[TicketQueued], _: None) -> None:
    await _fill(session, event.data.order_id, queued_at=event.data.queued_at)


async def kitchen_cooking_started(
    session: AsyncSession, event: ReceivedEvent[KitchenCookingStarted], _: None
) -> None:
    data = event.data
    await _fill(session, data.order_id, cook=data.cook, kitchen_started_at=data.started_at)


async def kitchen_order_ready(
    session: AsyncSession, event: ReceivedEvent[KitchenOrderReady], _: None
) -> None:
    data = event.data
    await _fill(
        session,
        data.order_id,
        kitchen_ready_at=data.ready_at,
        estimated_ready_at=data.estimated_ready_at,
        lateness_seconds=data.lateness_seconds,
        on_time=is_on_time(data.ready_at, data.estimated_ready_at),
    )


async def ticket_withdrawn(
    session: AsyncSession, event: ReceivedEvent[TicketWithdrawn], _: None
) -> None:
    data = event.data
    await _fill(
        session, data.order_id, withdrawn_at=data.withdrawn_at, pizzas_wasted=data.pizzas_wasted
    )


# The whole projection at a glance: each event type and the handler that applies it. The names
# key the consumer's inbox (one row per handler and event id), so they never change, even where
# a handler's own name has since followed its event's. The handlers need no dependencies.
EVENT_HANDLERS: tuple[EventHandler[Any, None], ...] = (
    EventHandler("analytics.order_placed", OrderPlaced, order_placed),
    EventHandler("analytics.order_confirmed", OrderConfirmed, order_confirmed),
    EventHandler("analytics.order_cancelled", OrderCancelled, order_cancelled),
    EventHandler("analytics.order_cooking", OrderCookingStarted, order_cooking_started),
    EventHandler("analytics.order_ready", OrderReady, order_ready),
    EventHandler("analytics.order_departed", OrderDeparted, order_departed),
    EventHandler("analytics.order_delivered", OrderDelivered, order_delivered),
    EventHandler("analytics.order_picked_up", OrderPickedUp, order_picked_up),
    EventHandler("analytics.ticket_queued", TicketQueued, ticket_queued),
    EventHandler("analytics.kitchen_cooking", KitchenCookingStarted, kitchen_cooking_started),
    EventHandler("analytics.kitchen_ready", KitchenOrderReady, kitchen_order_ready),
    EventHandler("analytics.ticket_withdrawn", TicketWithdrawn, ticket_withdrawn),
)
