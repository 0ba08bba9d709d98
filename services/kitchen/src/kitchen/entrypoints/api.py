"""The kitchen's HTTP API."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException, status
from sqlalchemy import select

from eventing.service import ServiceDep, consuming_lifespan
from kitchen.adapters.orm import tickets_table
from kitchen.bootstrap import bootstrap
from kitchen.service_layer.handlers import ticket_public
from kitchen.settings import KitchenSettings


def create_app(settings: KitchenSettings | None = None) -> FastAPI:
    app = FastAPI(
        title="Mario's Pizzeria — Kitchen",
        version="0.1.0",
        lifespan=consuming_lifespan(lambda: bootstrap(settings)),
    )

    @app.get("/tickets", tags=["tickets"])
    async def list_tickets(service: ServiceDep) -> list[dict[str, Any]]:
        """Every ticket, oldest first."""
        async with service.sessions() as session:
            rows = (
                await session.execute(select(tickets_table).order_by(tickets_table.c.queued_at))
            ).mappings()
            return [ticket_public(row) for row in rows]

    @app.get("/tickets/{order_id}", tags=["tickets"])
    async def get_ticket(order_id: str, service: ServiceDep) -> dict[str, Any]:
        """The ticket of one order."""
        async with service.sessions() as session:
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
