"""The unit of work: one transaction for a state change and the events it produced; and
what else a command handler is given with it (``OrdersDependencies``)."""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eventing.events import EventData
from eventing.outbox import Outbox, OutboxEvent
from orders.adapters.notifications import CodeSender
from orders.adapters.repository import SqlAlchemyOrderRepository
from orders.domain.sign_in import SignInPolicy


class UnitOfWork:
    """``async with uow: ... await uow.commit()``.

    At commit, the events of every order the repository touched, plus those handed to
    ``emit`` (menu, customers), go to the outbox in the same transaction. Leaving the block
    without commit rolls everything back, events included.
    """

    orders: SqlAlchemyOrderRepository
    session: AsyncSession

    def __init__(self, sessions: async_sessionmaker[AsyncSession], outbox: Outbox) -> None:
        self._sessions = sessions
        self.outbox = outbox
        self._emitted: list[OutboxEvent] = []

    async def __aenter__(self) -> UnitOfWork:
        self.session = self._sessions()
        await self.session.begin()
        self.orders = SqlAlchemyOrderRepository(self.session)
        self._emitted = []
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self.session.in_transaction():
                await self.session.rollback()
        finally:
            await self.session.close()

    def emit(self, event: EventData, *, aggregate_id: str, version: int | None = None) -> None:
        """Publish ``event`` of another aggregate (menu, customer) with this transaction."""
        self._emitted.append(
            OutboxEvent(data=event, aggregate_id=aggregate_id, aggregate_version=version)
        )

    async def commit(self) -> None:
        await save_orders(self.session, self.orders, self.outbox, extra=self._emitted)
        await self.session.commit()
        self._emitted = []


async def save_orders(
    session: AsyncSession,
    orders: SqlAlchemyOrderRepository,
    outbox: Outbox,
    *,
    extra: list[OutboxEvent] | None = None,
) -> None:
    """Write changed orders and enqueue their events in ``session``'s transaction (no commit)."""
    await orders.save_changes()
    events = [
        # Each event carries the version the order reached with it: 1, 2, 3...
        OutboxEvent(
            data=event,
            aggregate_id=order.id,
            aggregate_version=order.version - len(order.events) + position,
        )
        for order in orders.seen
        for position, event in enumerate(order.events, start=1)
    ]
    await outbox.enqueue(session, [*events, *(extra or [])])
    for order in orders.seen:
        order.events.clear()


@dataclass(frozen=True)
class OrdersDependencies:
    """What ``bootstrap`` gives each command's handler: a unit of work of its own, the rules of
    sign-in codes, and where codes go (None when sign-in is not set up: the API refuses to ask
    for a code then)."""

    uow: UnitOfWork
    sign_in: SignInPolicy
    code_sender: CodeSender | None
