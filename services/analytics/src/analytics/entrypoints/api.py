"""The analytics service's HTTP API."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import FastAPI, HTTPException, status
from sqlalchemy import func, select

from analytics.adapters.orm import order_facts_table
from analytics.bootstrap import bootstrap
from analytics.service_layer.handlers import fact_public
from analytics.settings import AnalyticsSettings
from eventing.service import ServiceDep, consuming_lifespan


def create_app(settings: AnalyticsSettings | None = None) -> FastAPI:
    app = FastAPI(
        title="Mario's Pizzeria — Analytics",
        version="0.1.0",
        lifespan=consuming_lifespan(lambda: bootstrap(settings)),
    )

    @app.get("/overview", tags=["analytics"])
    async def overview(service: ServiceDep) -> dict[str, Any]:
        """Orders and revenue so far."""
        async with service.sessions() as session:
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
    async def order_fact(order_id: str, service: ServiceDep) -> dict[str, Any]:
        """What analytics knows of one order."""
        async with service.sessions() as session:
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
