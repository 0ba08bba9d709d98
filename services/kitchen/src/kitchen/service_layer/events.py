"""The kitchen's reactions to order events, each inside the consumer's transaction (with the inbox).

* ``OrderConfirmed`` queues a ticket with the order's lines, pizza count and fulfilment.
  (``OrderPlaced`` is not subscribed: an order reaches the kitchen only once confirmed.)
* ``OrderCancelled`` withdraws the order's ticket. What that means depends on how far the
  kitchen got, and none of it is an error, because the order service decides about cancelling
  and the kitchen must live with it:

  - queued: the ticket is withdrawn (``TicketWithdrawn``, ``wasted`` false);
  - cooking: the pizzas are thrown away. The ticket becomes ``wasted`` with the reason and the
    number of pizzas (``TicketWithdrawn``, ``wasted`` true), and a warning is logged;
  - ready: too late to save anything and nothing left to cook. The ticket stays ``ready`` (a cook
    may still need to clear it away), the cancellation's time and reason are noted on it, and a
    warning is logged. No event: nothing changed in the kitchen's flow;
  - no ticket: the normal case for an order cancelled while pending (it never reached the
    kitchen), logged at info. A cancellation of an order said to be *confirmed* without a ticket
    means the kitchen missed the confirmation: logged as a warning for an operator. Neither is
    retried nor dead-lettered: there is nothing the kitchen could do with the event later;
  - already withdrawn or wasted: nothing to do.

Each handler also advances the kitchen clock to the event's time and re-estimates the queue
(see ``unit_of_work``), so the state after consuming a topic does not depend on the order in
which its partitions were processed.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.catalogue import OrderCancelled, OrderConfirmed, TicketQueued, TicketWithdrawn
from eventing.consumer import ReceivedEvent
from kitchen.adapters import metrics
from kitchen.domain.tickets import CancelOutcome, Ticket, TicketLine
from kitchen.service_layer.unit_of_work import KitchenChange, KitchenDependencies
from service_kit.handlers import EventHandler

# The logger keeps the name its records had before this module was events.py.
log = logging.getLogger("kitchen.handlers")


async def queue_confirmed_order(
    session: AsyncSession, event: ReceivedEvent[OrderConfirmed], deps: KitchenDependencies
) -> None:
    order = event.data
    change = await KitchenChange.begin(deps, session, at=order.confirmed_at, cause=event.id)
    ticket = Ticket.queue(
        order.order_id,
        tuple(
            TicketLine(line.pizza, line.size, line.quantity, tuple(line.toppings))
            for line in order.lines
        ),
        order.fulfilment,
        at=order.confirmed_at,
    )
    added = await change.tickets.add(ticket)
    if not added:
        log.warning(
            "order %s is confirmed again (event %s) but already has a ticket; ignored",
            order.order_id,
            event.id,
        )
    estimates = await change.reestimate()
    if added:
        metrics.after_commit(session, lambda: metrics.ticket_outcome("queued"))
        change.emit(
            TicketQueued(
                order_id=ticket.order_id,
                pizzas=ticket.pizzas,
                estimated_ready_at=estimates[ticket.order_id],
                queued_at=ticket.queued_at,
            ),
            ticket.order_id,
        )
        log.info(
            "queued order %s: %d pizzas, estimated ready at %s",
            ticket.order_id,
            ticket.pizzas,
            estimates[ticket.order_id].isoformat(),
        )
    await change.finish()


async def withdraw_cancelled_order(
    session: AsyncSession, event: ReceivedEvent[OrderCancelled], deps: KitchenDependencies
) -> None:
    cancellation = event.data
    change = await KitchenChange.begin(deps, session, at=cancellation.cancelled_at, cause=event.id)
    ticket = await change.tickets.get(cancellation.order_id)
    if ticket is None:
        level = logging.INFO if cancellation.previous_status == "pending" else logging.WARNING
        log.log(
            level,
            "order %s was cancelled (was %s) and has no ticket; nothing to withdraw",
            cancellation.order_id,
            cancellation.previous_status,
        )
    else:
        outcome = ticket.cancel(at=cancellation.cancelled_at, reason=cancellation.reason)
        if outcome is CancelOutcome.ALREADY_CANCELLED:
            log.info("ticket %s was already %s", ticket.order_id, ticket.status.value)
        else:
            await change.tickets.save(ticket)
        if outcome in (CancelOutcome.WITHDRAWN, CancelOutcome.WASTED):
            counted = outcome.value  # "withdrawn" or "wasted"
            metrics.after_commit(session, lambda: metrics.ticket_outcome(counted))
            change.emit(
                TicketWithdrawn(
                    order_id=ticket.order_id,
                    wasted=outcome is CancelOutcome.WASTED,
                    pizzas_wasted=ticket.pizzas_wasted,
                    reason=cancellation.reason,
                    withdrawn_at=cancellation.cancelled_at,
                ),
                ticket.order_id,
            )
        if outcome is CancelOutcome.WASTED:
            log.warning(
                "order %s was cancelled while cooking: %d pizzas wasted (%s)",
                ticket.order_id,
                ticket.pizzas_wasted,
                cancellation.reason,
            )
        elif outcome is CancelOutcome.ALREADY_READY:
            log.warning(
                "order %s was cancelled after its pizzas were ready; the ticket stays ready (%s)",
                ticket.order_id,
                cancellation.reason,
            )
        elif outcome is CancelOutcome.WITHDRAWN:
            log.info("withdrew the queued ticket of order %s", ticket.order_id)
    await change.reestimate()
    await change.finish()


EVENT_HANDLERS: tuple[EventHandler[Any, KitchenDependencies], ...] = (
    EventHandler("kitchen.queue_confirmed_order", OrderConfirmed, queue_confirmed_order),
    EventHandler("kitchen.withdraw_cancelled_order", OrderCancelled, withdraw_cancelled_order),
)
