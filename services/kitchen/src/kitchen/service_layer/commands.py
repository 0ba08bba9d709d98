"""What cooks do: start cooking a ticket and mark it ready, each in a transaction of its own.

Each step locks the kitchen, changes the ticket, emits its kitchen event and re-estimates the
queue (see ``unit_of_work``); the events reach the outbox in the same transaction.
"""

from __future__ import annotations

from typing import Any

from contracts.catalogue import KitchenCookingStarted, KitchenOrderReady
from kitchen.adapters import metrics
from kitchen.domain.commands import MarkReady, StartCooking
from kitchen.domain.tickets import Ticket, TicketNotFound, TicketStatus
from kitchen.service_layer.unit_of_work import KitchenChange, UnitOfWork
from service_kit.commands import Command
from service_kit.handlers import CommandHandler


async def start_cooking(command: StartCooking, uow: UnitOfWork) -> Ticket:
    """Raises TicketNotFound, InvalidTransition, KitchenAtCapacity."""
    async with uow.change() as change:
        ticket = await _ticket(change, command.order_id)
        cooking = await change.tickets.count(TicketStatus.COOKING)
        ticket.start_cooking(
            cook=command.cook, at=change.now, model=change.deps.model, cooking=cooking
        )
        await change.tickets.save(ticket)
        assert ticket.started_at is not None
        change.emit(
            KitchenCookingStarted(
                order_id=ticket.order_id,
                cook=command.cook,
                started_at=ticket.started_at,
                estimated_ready_at=ticket.estimated_ready_at,
            ),
            ticket.order_id,
        )
        await change.reestimate()
    return ticket


async def mark_ready(command: MarkReady, uow: UnitOfWork) -> Ticket:
    """Raises TicketNotFound, InvalidTransition."""
    async with uow.change() as change:
        ticket = await _ticket(change, command.order_id)
        ticket.mark_ready(at=change.now)
        await change.tickets.save(ticket)
        assert ticket.ready_at is not None
        change.emit(
            KitchenOrderReady(
                order_id=ticket.order_id,
                ready_at=ticket.ready_at,
                estimated_ready_at=ticket.estimated_ready_at,
                lateness_seconds=ticket.lateness_seconds,
            ),
            ticket.order_id,
        )
        await change.reestimate()
    metrics.ticket_ready(ticket.started_at, ticket.ready_at, ticket.lateness_seconds)
    return ticket


async def _ticket(change: KitchenChange, order_id: str) -> Ticket:
    ticket = await change.tickets.get(order_id)
    if ticket is None:
        raise TicketNotFound(order_id)
    return ticket


COMMAND_HANDLERS: dict[type[Command[Any]], CommandHandler[UnitOfWork]] = {
    StartCooking: start_cooking,
    MarkReady: mark_ready,
}
