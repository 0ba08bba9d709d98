"""The kitchen's HTTP API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request, status
from sqlalchemy import select

from eventing.http import database_check, operations_router
from eventing.service import consuming
from kitchen.adapters.orm import tickets_table
from kitchen.bootstrap import KitchenContainer, bootstrap
from kitchen.service_layer.handlers import ticket_public
from kitchen.settings import KitchenSettings


def _container(request: Request) -> KitchenContainer:
    container: KitchenContainer = request.app.state.container
    return container


Container = Annotated[KitchenContainer, Depends(_container)]


def create_app(settings: KitchenSettings | None = None) -> FastAPI:
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

    app = FastAPI(title="Mario's Pizzeria — Kitchen", version="0.1.0", lifespan=lifespan)

    @app.get("/tickets", tags=["tickets"])
    async def list_tickets(container: Container) -> list[dict[str, Any]]:
        """Every ticket, oldest first."""
        async with container.sessions() as session:
            rows = (
                await session.execute(select(tickets_table).order_by(tickets_table.c.queued_at))
            ).mappings()
            return [ticket_public(row) for row in rows]

    @app.get("/tickets/{order_id}", tags=["tickets"])
    async def get_ticket(order_id: str, container: Container) -> dict[str, Any]:
        """The ticket of one order."""
        async with container.sessions() as session:
            row = (
                (
                    await session.execute(
                        select(tickets_table).where(tickets_table.c.order_id == order_id)
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no ticket for order {order_id!r}")
        return ticket_public(row)

    return app
