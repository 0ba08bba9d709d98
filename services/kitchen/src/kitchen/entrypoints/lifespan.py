"""The kitchen app's lifespan: the shared consuming lifespan, plus ending the queue streams.

A Server-Sent Events response never finishes by itself, and uvicorn's graceful shutdown waits for
open responses to finish *before* it runs the lifespan's shutdown. So an open kitchen display
would hold a SIGTERM up for good. While the app runs, the exit signals uvicorn handles (SIGINT,
SIGTERM) therefore also close the broadcaster, which ends every stream at once; the handler
uvicorn installed still runs first, and is restored when the app stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from types import FrameType
from typing import Any

from fastapi import FastAPI

from kitchen.bootstrap import KitchenService, bootstrap
from kitchen.service_layer.broadcast import QueueBroadcaster
from kitchen.settings import KitchenSettings
from service_kit.service import consuming_lifespan

EXIT_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def kitchen_lifespan(
    settings: KitchenSettings | None,
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    consuming = consuming_lifespan(lambda: bootstrap(settings))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with consuming(app):
            service: KitchenService = app.state.service
            broadcaster = service.deps.broadcaster
            with _close_streams_on_exit_signal(broadcaster):
                try:
                    yield
                finally:
                    broadcaster.close()

    return lifespan


@contextlib.contextmanager
def _close_streams_on_exit_signal(broadcaster: QueueBroadcaster) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    previous: dict[signal.Signals, Any] = {}
    for signum in EXIT_SIGNALS:
        handler = signal.getsignal(signum)
        if not callable(handler):  # SIG_DFL / SIG_IGN: no server of ours handles it
            continue
        previous[signum] = handler

        def chained(number: int, frame: FrameType | None, _handler: Any = handler) -> None:
            _handler(number, frame)
            loop.call_soon_threadsafe(broadcaster.close)

        signal.signal(signum, chained)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
