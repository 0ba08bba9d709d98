"""Loading and saving tickets, and the kitchen lock and clock, with SQLAlchemy (the reads of
the display and the cooks' listings are in ``queries``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from kitchen.adapters.orm import kitchen_clock_table, tickets_table
from kitchen.domain.tickets import Ticket, TicketLine, TicketStatus

T = tickets_table.c

# Queue order: first confirmed, first cooked; the order id breaks ties.
QUEUE_ORDER = (T.queued_at, T.order_id)


class EstimateInput(NamedTuple):
    """A ticket as the estimate model sees it; ``at`` is the cooking ticket's start or the
    queued ticket's stored estimate."""

    order_id: str
    pizzas: int
    at: datetime | None


class TicketRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # ------------------------------------------------------------------ the kitchen lock
    async def lock_kitchen(self, at: datetime) -> datetime:
        """Lock the kitchen for this transaction (every change does) and move its clock to
        ``at`` unless it is past it already (it never goes back); returns the clock.

        One statement: the row lock and the clock's move are one round trip."""
        clock = kitchen_clock_table.c.now
        statement = (
            update(kitchen_clock_table)
            .where(kitchen_clock_table.c.id == 1)
            .values(now=func.greatest(clock, at))  # GREATEST skips a NULL (no clock yet)
            .returning(clock)
        )
        row = (await self._session.execute(statement)).first()
        if row is None:  # the migration inserts the row; recreate it if someone removed it
            await self._session.execute(
                insert(kitchen_clock_table).values(id=1, now=None).on_conflict_do_nothing()
            )
            row = (await self._session.execute(statement)).first()
            assert row is not None
        now: datetime = row.now
        return now

    # ------------------------------------------------------------------ tickets
    async def get(self, order_id: str) -> Ticket | None:
        row = (
            (await self._session.execute(select(tickets_table).where(T.order_id == order_id)))
            .mappings()
            .first()
        )
        return None if row is None else ticket_from_row(row)

    async def add(self, ticket: Ticket) -> bool:
        """Insert ``ticket``; False (and nothing written) when the order has a ticket already."""
        inserted = await self._session.execute(_ADD_TICKET, _row(ticket))
        return inserted.first() is not None

    async def save(self, ticket: Ticket) -> None:
        row = _row(ticket)
        row["ticket_order_id"] = row.pop("order_id")
        await self._session.execute(_SAVE_TICKET, row)

    async def set_estimates(self, estimates: Mapping[str, datetime]) -> None:
        """Store ``estimates`` (order id -> estimated ready time) in one statement."""
        if not estimates:
            return
        await self._session.execute(
            text(
                "UPDATE tickets SET estimated_ready_at = moved.at"
                " FROM unnest(CAST(:ids AS text[]), CAST(:ats AS timestamptz[])) AS moved(id, at)"
                " WHERE tickets.order_id = moved.id"
            ),
            {"ids": list(estimates), "ats": list(estimates.values())},
        )

    async def line_up(self) -> tuple[list[EstimateInput], list[EstimateInput]]:
        """What the estimate model needs, and nothing more (no lines): the cooking tickets by
        start, and the queued ones in queue order with their stored estimates. Every change
        re-estimates the queue, so this read is on every change's path."""
        rows = await self._session.execute(
            select(T.order_id, T.status, T.pizzas, T.started_at, T.estimated_ready_at)
            .where(T.status.in_([TicketStatus.QUEUED.value, TicketStatus.COOKING.value]))
            .order_by(*QUEUE_ORDER)
        )
        cooking: list[EstimateInput] = []
        queued: list[EstimateInput] = []
        for order_id, status, pizzas, started_at, estimated_ready_at in rows:
            if status == TicketStatus.COOKING.value:
                cooking.append(EstimateInput(order_id, pizzas, started_at))
            else:
                queued.append(EstimateInput(order_id, pizzas, estimated_ready_at))
        return cooking, queued

    async def count(self, status: TicketStatus) -> int:
        counted = await self._session.execute(
            select(func.count()).select_from(tickets_table).where(T.status == status.value)
        )
        return int(counted.scalar_one())


# Built once (building a statement and its cache key cost more than running it); their
# parameters name the columns written. The key's is named apart from the column's own.
_ADD_TICKET = (
    insert(tickets_table).on_conflict_do_nothing(index_elements=[T.order_id]).returning(T.order_id)
)
_SAVE_TICKET = update(tickets_table).where(T.order_id == bindparam("ticket_order_id"))


def _row(ticket: Ticket) -> dict[str, Any]:
    return {
        "order_id": ticket.order_id,
        "pizzas": ticket.pizzas,
        "lines": [
            {
                "pizza": line.pizza,
                "size": line.size,
                "quantity": line.quantity,
                "toppings": list(line.toppings),
            }
            for line in ticket.lines
        ],
        "status": ticket.status.value,
        "queued_at": ticket.queued_at,
        "fulfilment": ticket.fulfilment,
        "started_at": ticket.started_at,
        "ready_at": ticket.ready_at,
        "cook": ticket.cook,
        "estimated_ready_at": ticket.estimated_ready_at,
        "lateness_seconds": ticket.lateness_seconds,
        "cancelled_at": ticket.cancelled_at,
        "cancel_reason": ticket.cancel_reason,
        "pizzas_wasted": ticket.pizzas_wasted,
    }


def ticket_from_row(row: Any) -> Ticket:
    return Ticket(
        order_id=row["order_id"],
        lines=tuple(
            TicketLine(
                pizza=line["pizza"],
                size=line["size"],
                quantity=line["quantity"],
                toppings=tuple(line.get("toppings", ())),
            )
            for line in row["lines"]
        ),
        fulfilment=row["fulfilment"],
        status=TicketStatus(row["status"]),
        queued_at=row["queued_at"],
        started_at=row["started_at"],
        ready_at=row["ready_at"],
        cook=row["cook"],
        estimated_ready_at=row["estimated_ready_at"],
        lateness_seconds=row["lateness_seconds"],
        cancelled_at=row["cancelled_at"],
        cancel_reason=row["cancel_reason"],
        pizzas_wasted=row["pizzas_wasted"],
    )
