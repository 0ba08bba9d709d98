"""The doorbell: how a committed delivery reaches its dispatcher at once instead of at its next
poll, within one process. Other instances' dispatchers still find it by polling."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from notifications.domain.messages import Channel


class Doorbell:
    """One event per channel, set when a transaction that queued deliveries of it commits."""

    def __init__(self) -> None:
        self._rung = {channel: asyncio.Event() for channel in Channel}

    def ring(self, channels: Iterable[Channel]) -> None:
        for channel in channels:
            self._rung[channel].set()

    def of(self, channel: Channel) -> asyncio.Event:
        return self._rung[channel]
