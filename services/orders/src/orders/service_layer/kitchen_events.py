"""The kitchen's events turn into order status (consumed idempotently through the inbox)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.catalogue import KitchenCookingStarted, KitchenOrderReady
from eventing.consumer import ReceivedEvent, Subscription
from eventing.errors import PermanentHandlerError
from eventing.outbox import Outbox
from orders import metrics
from orders.adapters.repository import SqlAlchemyOrderRepository
from orders.domain.model import InvalidTransition, Order
from orders.service_layer.unit_of_work import save_orders


def kitchen_subscriptions(outbox: Outbox) -> list[Subscription]:
    async def apply(session: AsyncSession, order_id: str, change: Callable[[Order], None]) -> None:
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

    async def cooking_started(
        session: AsyncSession, event: ReceivedEvent[KitchenCookingStarted]
    ) -> None:
        await apply(
            session, event.data.order_id, lambda o: o.start_cooking(at=event.data.started_at)
        )

    async def order_ready(session: AsyncSession, event: ReceivedEvent[KitchenOrderReady]) -> None:
        await apply(session, event.data.order_id, lambda o: o.mark_ready(at=event.data.ready_at))

    return [
        Subscription("orders.kitchen_cooking_started", KitchenCookingStarted, cooking_started),
        Subscription("orders.kitchen_order_ready", KitchenOrderReady, order_ready),
    ]
