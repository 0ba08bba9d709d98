"""What the kitchen display and the cooks read: the board, one ticket, a listing. Reads only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kitchen.adapters.orm import tickets_table
from kitchen.adapters.repository import QUEUE_ORDER, TicketRepository, ticket_from_row
from kitchen.domain.tickets import Ticket, TicketNotFound, TicketStatus

T = tickets_table.c

# Ready tickets stay on the display this long, for the hand-over.
READY_SHOWN_FOR = timedelta(minutes=30)


@dataclass(frozen=True)
class Board:
    capacity: int
    cooking: int
    tickets: list[Ticket]


async def board(sessions: async_sessionmaker[AsyncSession], capacity: int) -> Board:
    """The display: queued in queue order, then cooking by start, then the ones ready in the
    last 30 minutes by the time they became ready. One query, so one snapshot."""
    ready_since = datetime.now(UTC) - READY_SHOWN_FOR
    async with sessions() as session, session.begin():
        rows = (
            await session.execute(
                select(tickets_table).where(
                    or_(
                        T.status.in_([TicketStatus.QUEUED.value, TicketStatus.COOKING.value]),
                        and_(T.status == TicketStatus.READY.value, T.ready_at >= ready_since),
                    )
                )
            )
        ).mappings()
        tickets = [ticket_from_row(row) for row in rows]
    rank = {TicketStatus.QUEUED: 0, TicketStatus.COOKING: 1, TicketStatus.READY: 2}

    def position(ticket: Ticket) -> tuple[int, datetime, str]:
        moment = {
            TicketStatus.QUEUED: ticket.queued_at,
            TicketStatus.COOKING: ticket.started_at,
            TicketStatus.READY: ticket.ready_at,
        }[ticket.status]
        return rank[ticket.status], moment or ticket.queued_at, ticket.order_id

    tickets.sort(key=position)
    cooking = sum(1 for ticket in tickets if ticket.status is TicketStatus.COOKING)
    return Board(capacity, cooking, tickets)


async def get_ticket(sessions: async_sessionmaker[AsyncSession], order_id: str) -> Ticket:
    """The order's ticket, in any status. Raises TicketNotFound."""
    async with sessions() as session:
        ticket = await TicketRepository(session).get(order_id)
    if ticket is None:
        raise TicketNotFound(order_id)
    return ticket


async def list_tickets(
    sessions: async_sessionmaker[AsyncSession], statuses: Sequence[TicketStatus], limit: int
) -> list[Ticket]:
    """Tickets in ``statuses`` (every status if empty) in queue order, at most ``limit``."""
    statement = select(tickets_table)
    if statuses:
        statement = statement.where(T.status.in_([status.value for status in statuses]))
    async with sessions() as session:
        rows = (await session.execute(statement.order_by(*QUEUE_ORDER).limit(limit))).mappings()
        return [ticket_from_row(row) for row in rows]
