"""The kitchen's events turn into order status (consumed idempotently through the inbox); the
handlers are listed in ``EVENT_HANDLERS`` at the end, their outbox bound by ``bootstrap``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.catalogue import KitchenCookingStarted, KitchenOrderReady
from eventing.consumer import ReceivedEvent
from eventing.errors import PermanentHandlerError
from eventing.outbox import Outbox
from orders.adapters import metrics
from orders.adapters.repository import SqlAlchemyOrderRepository
from orders.domain.model import InvalidTransition, Order
from orders.service_layer.unit_of_work import save_orders
from service_kit.handlers import EventHandler


async def start_cooking(
    session: AsyncSession, event: ReceivedEvent[KitchenCookingStarted], outbox: Outbox
) -> None:
    await _apply(
        session, outbox, event.data.order_id, lambda o: o.start_cooking(at=event.data.started_at)
    )


async def mark_ready(
    session: AsyncSession, event: ReceivedEvent[KitchenOrderReady], outbox: Outbox
) -> None:
    await _apply(
        session, outbox, event.data.order_id, lambda o: o.mark_ready(at=event.data.ready_at)
    )


async def _apply(
    session: AsyncSession, outbox: Outbox, order_id: str, change: Callable[[Order], None]
) -> None:
    orders = SqlAlchemyOrderRepository(session)
    order = await orders.get(order_id, for_update=True)
    if order is None:
        raise PermanentHandlerError(f"no order {order_id!r}")
    try:
        change(order)
    except InvalidTransition as refused:
        # The kitchen and the order disagree (e.g. cooking a cancelled order): an operator
        # must look at it, so it goes to the dead-letter topic with the reason.
        raise PermanentHandlerError(str(refused)) from refused
    await save_orders(session, orders, outbox)
    reached = order.status
    metrics.after_commit(session, lambda: metrics.order_transitioned(reached))


EVENT_HANDLERS: tuple[EventHandler[Any, Outbox], ...] = (
    EventHandler("orders.kitchen_cooking_started", KitchenCookingStarted, start_cooking),
    EventHandler("orders.kitchen_order_ready", KitchenOrderReady, mark_ready),
)
