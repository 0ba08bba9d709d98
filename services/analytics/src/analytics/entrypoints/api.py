"""The analytics service's HTTP API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request, status
from sqlalchemy import func, select

from analytics.adapters.orm import order_facts_table
from analytics.bootstrap import AnalyticsContainer, bootstrap
from analytics.service_layer.handlers import fact_public
from analytics.settings import AnalyticsSettings
from eventing.http import database_check, operations_router
from eventing.service import consuming


def _container(request: Request) -> AnalyticsContainer:
    container: AnalyticsContainer = request.app.state.container
    return container


Container = Annotated[AnalyticsContainer, Depends(_container)]


def create_app(settings: AnalyticsSettings | None = None) -> FastAPI:
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

    app = FastAPI(title="Mario's Pizzeria — Analytics", version="0.1.0", lifespan=lifespan)

    @app.get("/overview", tags=["analytics"])
    async def overview(container: Container) -> dict[str, Any]:
        """Orders and revenue so far."""
        async with container.sessions() as session:
            row = (
                await session.execute(
                    select(
                        func.count().label("orders"),
                        func.coalesce(func.sum(order_facts_table.c.total), 0).label("revenue"),
                        func.coalesce(func.sum(order_facts_table.c.pizzas), 0).label("pizzas"),
                    )
                )
            ).one()
        return {"orders": row.orders, "revenue": Decimal(row.revenue), "pizzas": row.pizzas}

    @app.get("/orders/{order_id}", tags=["analytics"])
    async def order_fact(order_id: str, container: Container) -> dict[str, Any]:
        """What analytics knows of one order."""
        async with container.sessions() as session:
            row = (
                (
                    await session.execute(
                        select(order_facts_table).where(order_facts_table.c.order_id == order_id)
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no order {order_id!r}")
        return fact_public(row)

    return app
