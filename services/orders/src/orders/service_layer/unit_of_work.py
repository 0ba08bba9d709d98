"""The unit of work: one transaction for the state change and the events it produced."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eventing.outbox import Outbox, OutboxEvent
from orders.adapters.repository import SqlAlchemyOrderRepository


class UnitOfWork:
    """``async with uow: ... await uow.commit()`` — events of every order touched go to the
    outbox in the same transaction; leaving without commit rolls everything back."""

    orders: SqlAlchemyOrderRepository
    session: AsyncSession

    def __init__(self, sessions: async_sessionmaker[AsyncSession], outbox: Outbox) -> None:
        self._sessions = sessions
        self._outbox = outbox

    async def __aenter__(self) -> UnitOfWork:
        self.session = self._sessions()
        await self.session.begin()
        self.orders = SqlAlchemyOrderRepository(self.session)
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

    async def commit(self) -> None:
        await self.orders.save_changes()
        events = [
            OutboxEvent(data=event, aggregate_id=order.id, aggregate_version=order.version)
            for order in self.orders.seen
            for event in order.events
        ]
        await self._outbox.enqueue(self.session, events)
        await self.session.commit()
        for order in self.orders.seen:
            order.events.clear()
