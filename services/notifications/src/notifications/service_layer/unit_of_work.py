"""One transaction of the workers or the API, and the repository that writes in it.

``async with uow:`` begins a transaction; ``await uow.commit()`` commits it, and leaving the
block without committing rolls it back. A unit of work may be entered again once the block is
left (the late-order timer uses one for every round), but never twice at the same time. The event
handlers have none: they write in the consumer's transaction, with its inbox row.
"""

from __future__ import annotations

import abc
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notifications.adapters.doorbell import Doorbell
from notifications.adapters.repository import AbstractRepository, SqlAlchemyRepository


class AbstractUnitOfWork(abc.ABC):
    repository: AbstractRepository

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.rollback()

    @abc.abstractmethod
    async def commit(self) -> None: ...

    @abc.abstractmethod
    async def rollback(self) -> None:
        """Undo what was not committed; nothing after a commit."""


class SqlAlchemyUnitOfWork(AbstractUnitOfWork):
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], doorbell: Doorbell | None = None
    ) -> None:
        self._sessions = sessions
        self._doorbell = doorbell
        self._session: AsyncSession | None = None

    async def __aenter__(self) -> Self:
        if self._session is not None:
            raise RuntimeError("this unit of work is in use")
        self._session = self._sessions()
        await self._session.begin()
        self.repository = SqlAlchemyRepository(self._session, self._doorbell)
        return await super().__aenter__()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            await super().__aexit__(kind, error, traceback)
        finally:
            session, self._session = self._session, None
            assert session is not None
            await session.close()

    async def commit(self) -> None:
        assert self._session is not None
        await self._session.commit()

    async def rollback(self) -> None:
        assert self._session is not None
        await self._session.rollback()
