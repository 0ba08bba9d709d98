"""The notifications service's HTTP API (in-app messages)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from sqlalchemy import select

from eventing.service import ServiceDep, consuming_lifespan
from notifications.adapters.orm import messages_table
from notifications.bootstrap import bootstrap
from notifications.service_layer.handlers import message_public
from notifications.settings import NotificationsSettings


def create_app(settings: NotificationsSettings | None = None) -> FastAPI:
    app = FastAPI(
        title="Mario's Pizzeria — Notifications",
        version="0.1.0",
        lifespan=consuming_lifespan(lambda: bootstrap(settings)),
    )

    @app.get("/orders/{order_id}/messages", tags=["messages"])
    async def order_messages(order_id: str, service: ServiceDep) -> list[dict[str, Any]]:
        """Messages sent about one order, oldest first."""
        async with service.sessions() as session:
            rows = (
                await session.execute(
                    select(messages_table)
                    .where(messages_table.c.order_id == order_id)
                    .order_by(messages_table.c.id)
                )
            ).mappings()
            return [message_public(row) for row in rows]

    return app
