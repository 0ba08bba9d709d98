"""One change of the kitchen: one transaction for the tickets, the estimates and the events.

Every change — a consumed order event or a cook's action — goes through ``KitchenChange``
(a cook's action in a transaction of its own, opened by ``UnitOfWork.change``; a consumed event's
in the consumer's transaction, with its inbox row):

1. ``begin`` locks the kitchen (one row; so two changes never race on capacity or estimates)
   and advances the kitchen's clock to the change's moment (it never goes back);
2. the caller changes tickets and ``emit``s events;
3. ``reestimate`` re-runs the estimate model (``kitchen.domain.estimates``) on the queue at that
   clock, stores the estimates that moved and emits ``EstimateChanged`` for them;
4. ``finish`` adds the events to the kitchen's outbox in the same transaction and arranges for
   the queue streams to be told once it commits.

The clock of a consumed event is the event's own time (``confirmed_at``, ``cancelled_at``), not
the wall clock, and the ids of the events it causes are derived from its id. So consuming the
same orders topic again, into an empty database, gives the same tickets, the same estimates and
the same kitchen event ids: the state is a function of the events, whatever the processing order
of the partitions, because the final re-estimate runs at the latest event time either way.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.catalogue import EstimateChanged
from eventing.events import EventData
from eventing.ids import uuid7, uuid7_from
from eventing.outbox import Outbox, OutboxEvent
from kitchen.adapters.repository import TicketRepository
from kitchen.domain.estimates import (
    CookingOrder,
    KitchenModel,
    QueuedOrder,
    Revision,
    revisions,
)
from kitchen.service_layer.broadcast import QueueBroadcaster

SOURCE = "/mariospizzeria/kitchen"


@dataclass(frozen=True)
class KitchenDependencies:
    """What every change needs: the estimate model, the outbox and the streams' broadcaster."""

    model: KitchenModel
    outbox: Outbox
    broadcaster: QueueBroadcaster


@dataclass
class KitchenChange:
    deps: KitchenDependencies
    session: AsyncSession
    now: datetime
    cause: str | None  # the id of the consumed event behind this change, if any
    cause_at: datetime  # that event's own time (or the wall clock of a cook's action)
    tickets: TicketRepository
    events: list[OutboxEvent] = field(default_factory=list)
    changed: bool = False  # something the display shows changed: tell the streams

    @classmethod
    async def begin(
        cls,
        deps: KitchenDependencies,
        session: AsyncSession,
        *,
        at: datetime,
        cause: str | None = None,
    ) -> KitchenChange:
        """Lock the kitchen in ``session``'s transaction and move its clock to ``at``."""
        tickets = TicketRepository(session)
        now = await tickets.lock_kitchen(at)
        return cls(deps, session, now, cause, at, tickets)

    def emit(self, data: EventData, order_id: str) -> None:
        event_id = (
            uuid7()
            if self.cause is None
            else derived_event_id(self.cause, data, order_id, self.cause_at)
        )
        self.events.append(OutboxEvent(data=data, aggregate_id=order_id, id=event_id))
        self.changed = True

    async def reestimate(self) -> dict[str, datetime]:
        """Estimate every queued ticket at ``now``; store and publish the ones that moved.

        Returns every queued ticket's estimate. A ticket without a stored estimate (just queued)
        gets one stored but no ``EstimateChanged``: its ``TicketQueued`` carries it.
        """
        cooking, queued = await self.tickets.line_up()
        estimates = self.deps.model.estimate(
            [CookingOrder(t.order_id, t.pizzas, t.at or self.now) for t in cooking],
            [QueuedOrder(t.order_id, t.pizzas) for t in queued],
            self.now,
        )
        stored = {ticket.order_id: ticket.at for ticket in queued}
        current = {e.order_id: e.estimated_ready_at for e in estimates}
        moved = {
            order_id: moment for order_id, moment in current.items() if stored[order_id] != moment
        }
        await self.tickets.set_estimates(moved)
        self.changed = self.changed or bool(moved)
        for revision in revisions(stored, estimates):
            self._publish(revision)
        return current

    def _publish(self, revision: Revision) -> None:
        self.emit(
            EstimateChanged(
                order_id=revision.order_id,
                estimated_ready_at=revision.estimated_ready_at,
                previous_estimated_ready_at=revision.previous,
            ),
            revision.order_id,
        )

    async def finish(self) -> None:
        """Events into the outbox (this transaction); streams told when it commits. No commit.

        Every change of a ticket the display shows comes with an event or a moved estimate, so
        a change without either (a cancellation of an unknown order) wakes no stream.
        """
        await self.deps.outbox.enqueue(self.session, self.events)
        if self.changed:
            self.deps.broadcaster.notify_after_commit(self.session)


def derived_event_id(cause: str, data: EventData, order_id: str, at: datetime) -> uuid.UUID:
    """A UUIDv7-shaped id fixed by the consumed event that caused it: the same on a replay.

    The 48-bit time is ``at``, the consumed event's own time; the 74 other bits come
    from a hash of the cause, the event type and the order, so every event one consumed event
    causes has its own id. A replay that re-publishes carries the same ``ce_id``, and
    downstream inboxes drop it.
    """
    digest = hashlib.sha256(f"{cause}\x1f{data.event_type}\x1f{order_id}".encode()).digest()
    return uuid7_from(int(at.timestamp() * 1000), digest[:10])


@dataclass(frozen=True)
class UnitOfWork:
    """What a cook's command changes the kitchen with: a transaction of its own each time."""

    sessions: async_sessionmaker[AsyncSession]
    deps: KitchenDependencies

    @contextlib.asynccontextmanager
    async def change(self) -> AsyncIterator[KitchenChange]:
        """A change at the wall clock. Leaving the block finishes it and commits; an error
        rolls it all back (tickets, estimates and events)."""
        async with self.sessions() as session, session.begin():
            change = await KitchenChange.begin(self.deps, session, at=datetime.now(UTC))
            yield change
            await change.finish()
