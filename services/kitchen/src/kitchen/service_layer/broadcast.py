"""Telling the open queue streams that the kitchen changed: in-process, after each commit.

Every transaction that changes the kitchen (a consumer handler or a cook's action) calls
``notify_after_commit``; when, and only when, it commits, the broadcaster wakes every subscriber.
A subscriber then reads the queue once, however many changes arrived while it was busy, so a
slow display coalesces changes instead of falling behind. Nothing here polls the database.

One process, one broadcaster: the kitchen consumer and the API run in the same process (see
``consuming_lifespan``), so every state change of this kitchen passes through it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from enum import Enum
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession


class Wake(Enum):
    CHANGED = "changed"
    TIMEOUT = "timeout"
    CLOSED = "closed"


class Subscription:
    def __init__(self, broadcaster: QueueBroadcaster) -> None:
        self._broadcaster = broadcaster
        self._changed = asyncio.Event()

    def _wake(self) -> None:
        self._changed.set()

    async def wait(self, seconds: float) -> Wake:
        """Until the kitchen changes (since the last wait), ``seconds`` pass, or it closes."""
        if not self._changed.is_set() and not self._broadcaster.closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), seconds)
        if self._broadcaster.closed:
            return Wake.CLOSED
        if self._changed.is_set():
            self._changed.clear()
            return Wake.CHANGED
        return Wake.TIMEOUT


class QueueBroadcaster:
    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()
        self.closed = False
        self.notifications = 0

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    def notify(self) -> None:
        """The kitchen changed (its transaction committed). Synchronous: safe in any callback."""
        self.notifications += 1
        for subscription in self._subscriptions:
            subscription._wake()

    def close(self) -> None:
        """End every stream (the server is shutting down); later subscriptions end at once."""
        self.closed = True
        for subscription in self._subscriptions:
            subscription._wake()

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscription]:
        subscription = Subscription(self)
        self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)

    def notify_after_commit(self, session: AsyncSession) -> None:
        """Notify once ``session``'s transaction commits; a rolled-back change notifies nobody.

        (Sessions serve one transaction here. Were one reused after a rollback, the pending
        listener would fire at its next commit: one extra, harmless wake-up.)
        """
        if session.info.get(_PENDING):
            return
        session.info[_PENDING] = True

        def committed(_: Any) -> None:
            session.info.pop(_PENDING, None)
            self.notify()

        event.listen(session.sync_session, "after_commit", committed, once=True)


_PENDING = "kitchen.notify_after_commit"
