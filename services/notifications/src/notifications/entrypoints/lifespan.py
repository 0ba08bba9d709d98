"""The notifications app's lifespan: the shared consuming lifespan, plus the background workers
(one dispatcher per channel and the late timers), stopped before the consumer and database."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from fastapi import FastAPI

from notifications.bootstrap import NotificationsService, bootstrap
from notifications.settings import NotificationsSettings
from service_kit.service import consuming_lifespan


def notifications_lifespan(
    settings: NotificationsSettings | None,
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    consuming = consuming_lifespan(lambda: bootstrap(settings))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with consuming(app):
            service: NotificationsService = app.state.service
            stopping = asyncio.Event()
            workers = [
                asyncio.create_task(
                    dispatcher.run(service.poll_seconds, stopping),
                    name=f"dispatch-{dispatcher.channel.value}",
                )
                for dispatcher in service.dispatchers
            ]
            workers.append(
                asyncio.create_task(
                    service.timers.run(
                        service.poll_seconds,
                        stopping,
                        caught_up=lambda: service.consumer.drained,
                    ),
                    name="late-timers",
                )
            )
            try:
                yield
            finally:
                stopping.set()
                # A dispatcher in the middle of a send finishes it (bounded by its lease), writes
                # its outcome and releases the rest of its batch; past that the task is cancelled
                # and what it leased comes due when the lease ends.
                _, late = await asyncio.wait(workers, timeout=20)
                for task in late:
                    task.cancel()
                await service.code_messenger.close()
                await service.worker_engine.dispose()

    return lifespan
