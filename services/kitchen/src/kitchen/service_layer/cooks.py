"""What cooks do (start a ticket, mark it ready) and what the kitchen display reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.catalogue import KitchenCookingStarted, KitchenOrderReady
from kitchen import metrics
from kitchen.adapters.repository import TicketRepository
from kitchen.domain.tickets import Ticket, TicketStatus
from kitchen.service_layer.unit_of_work import Kitchen, KitchenChange

# Ready tickets stay on the display this long, for the hand-over.
READY_SHOWN_FOR = timedelta(minutes=30)


class TicketNotFound(LookupError):
    """No ticket for that order (not confirmed yet, or unknown)."""


@dataclass(frozen=True)
class Board:
    capacity: int
    cooking: int
    tickets: list[Ticket]


async def start_cooking(
    order_id: str, cook: str, sessions: async_sessionmaker[AsyncSession], kitchen: Kitchen
) -> Ticket:
    """``cook`` starts the order. Raises TicketNotFound, InvalidTransition, KitchenAtCapacity."""
    async with sessions() as session, session.begin():
        change = await KitchenChange.begin(kitchen, session, at=datetime.now(UTC))
        ticket = await _ticket(change, order_id)
        cooking = await change.tickets.count(TicketStatus.COOKING)
        ticket.start(cook=cook, at=change.now, model=kitchen.model, cooking=cooking)
        await change.tickets.save(ticket)
        assert ticket.started_at is not None
        change.emit(
            KitchenCookingStarted(
                order_id=order_id,
                cook=cook,
                started_at=ticket.started_at,
                estimated_ready_at=ticket.estimated_ready_at,
            ),
            order_id,
        )
        await change.reestimate()
        await change.finish()
    return ticket


async def mark_ready(
    order_id: str, sessions: async_sessionmaker[AsyncSession], kitchen: Kitchen
) -> Ticket:
    """The order's pizzas are done. Raises TicketNotFound, InvalidTransition."""
    async with sessions() as session, session.begin():
        change = await KitchenChange.begin(kitchen, session, at=datetime.now(UTC))
        ticket = await _ticket(change, order_id)
        ticket.mark_ready(at=change.now)
        await change.tickets.save(ticket)
        assert ticket.ready_at is not None
        change.emit(
            KitchenOrderReady(
                order_id=order_id,
                ready_at=ticket.ready_at,
                estimated_ready_at=ticket.estimated_ready_at,
                lateness_seconds=ticket.lateness_seconds,
            ),
            order_id,
        )
        await change.reestimate()
        await change.finish()
    metrics.ticket_ready(ticket.started_at, ticket.ready_at, ticket.lateness_seconds)
    return ticket


async def board(sessions: async_sessionmaker[AsyncSession], kitchen: Kitchen) -> Board:
    """The display: queued (queue order), cooking, and ready in the last 30 minutes."""
    async with sessions() as session, session.begin():
        tickets = await TicketRepository(session).board(datetime.now(UTC) - READY_SHOWN_FOR)
    cooking = sum(1 for ticket in tickets if ticket.status is TicketStatus.COOKING)
    return Board(kitchen.model.capacity, cooking, tickets)


async def get_ticket(order_id: str, sessions: async_sessionmaker[AsyncSession]) -> Ticket:
    async with sessions() as session:
        ticket = await TicketRepository(session).get(order_id)
    if ticket is None:
        raise TicketNotFound(order_id)
    return ticket


async def list_tickets(
    statuses: Sequence[TicketStatus], limit: int, sessions: async_sessionmaker[AsyncSession]
) -> list[Ticket]:
    async with sessions() as session:
        return await TicketRepository(session).listing(statuses, limit)


async def _ticket(change: KitchenChange, order_id: str) -> Ticket:
    ticket = await change.tickets.get(order_id)
    if ticket is None:
        raise TicketNotFound(order_id)
    return ticket
