"""The notifications service's HTTP API (in-app messages)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from sqlalchemy import select

from eventing.http import database_check, operations_router
from eventing.service import consuming
from notifications.adapters.orm import messages_table
from notifications.bootstrap import NotificationsContainer, bootstrap
from notifications.service_layer.handlers import message_public
from notifications.settings import NotificationsSettings


def _container(request: Request) -> NotificationsContainer:
    container: NotificationsContainer = request.app.state.container
    return container


Container = Annotated[NotificationsContainer, Depends(_container)]


def create_app(settings: NotificationsSettings | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        container = bootstrap(settings)
        app.state.container = container

        async def consumer_check() -> tuple[bool, str]:
            return container.consumer.ready()

        app.include_router(
            operations_router(
                {"database": database_check(container.engine), "consumer": consumer_check}
            )
        )
        try:
            async with consuming(container.consumer):
                yield
        finally:
            await container.close()

    app = FastAPI(title="Mario's Pizzeria — Notifications", version="0.1.0", lifespan=lifespan)

    @app.get("/orders/{order_id}/messages", tags=["messages"])
    async def order_messages(order_id: str, container: Container) -> list[dict[str, Any]]:
        """Messages sent about one order, oldest first."""
        async with container.sessions() as session:
            rows = (
                await session.execute(
                    select(messages_table)
                    .where(messages_table.c.order_id == order_id)
                    .order_by(messages_table.c.id)
                )
            ).mappings()
            return [message_public(row) for row in rows]

    return app
