"""Handlers for consumer-runtime tests: they record each application of an event in ``effects``.

``effects`` has no unique constraint on purpose: a repeated effect shows up as a second row, so
the tests see exactly what the inbox prevents.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.catalogue import OrderPlaced
from eventing.consumer import ReceivedEvent
from eventing.errors import PermanentHandlerError

EFFECTS_DDL = (
    "CREATE TABLE effects (handler text NOT NULL, event_id text NOT NULL, order_id text NOT NULL, "
    "applied_at timestamptz NOT NULL DEFAULT now())"
)

DOOMED_ORDER = "doomed-order"
REJECTED_ORDER = "rejected-order"


async def record(session: AsyncSession, handler: str, event: ReceivedEvent[OrderPlaced]) -> None:
    await session.execute(
        text("INSERT INTO effects (handler, event_id, order_id) VALUES (:h, :e, :o)"),
        {"h": handler, "e": event.id, "o": event.data.order_id},
    )


async def recorder(session: AsyncSession, event: ReceivedEvent[OrderPlaced]) -> None:
    if event.data.order_id == DOOMED_ORDER:
        raise RuntimeError("this order always breaks the handler")
    if event.data.order_id == REJECTED_ORDER:
        raise PermanentHandlerError("the handler refuses this order")
    await record(session, "recorder", event)


class Flaky:
    """Fails the first ``failures`` attempts at each event, then records it."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts: Counter[str] = Counter()

    async def __call__(self, session: AsyncSession, event: ReceivedEvent[OrderPlaced]) -> None:
        self.attempts[event.id] += 1
        await record(session, "flaky", event)  # written, then rolled back by the failure
        if self.attempts[event.id] <= self.failures:
            raise RuntimeError("flaky failure")
