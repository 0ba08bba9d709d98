"""The analytics service's HTTP API: every answer derived from events alone.

All routes but the dashboard page need an analyst or manager token. ``from``/``to`` select the
orders placed in ``[from, to)`` (ISO 8601 with an offset); buckets and hours are UTC.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, status

from analytics.adapters import queries
from analytics.bootstrap import bootstrap
from analytics.domain.window import Bucket
from analytics.entrypoints import dashboard
from analytics.entrypoints.deps import AnalystDep, BucketQuery, WindowDep
from analytics.settings import AnalyticsSettings
from eventing.http import protect
from eventing.service import ServiceDep, consuming_lifespan

AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No valid bearer token."},
    403: {"description": "The token has neither the analyst nor the manager role."},
    422: {"description": "A bad `from`/`to`/`bucket` (the detail says why)."},
}


def create_app(settings: AnalyticsSettings | None = None) -> FastAPI:
    app = FastAPI(
        title="Mario's Pizzeria — Analytics",
        version="0.2.0",
        description=__doc__,
        lifespan=consuming_lifespan(lambda: bootstrap(settings)),
        responses=AUTH_RESPONSES,
    )
    protect(app)
    app.include_router(dashboard.router)

    @app.get("/overview", tags=["analytics"])
    async def overview(service: ServiceDep, _: AnalystDep, window: WindowDep) -> dict[str, Any]:
        """Orders, cancellations, revenue, average order value, pizzas, customers."""
        async with service.sessions() as session:
            return await queries.overview(session, window)

    @app.get("/timeseries", tags=["analytics"])
    async def timeseries(
        service: ServiceDep, _: AnalystDep, window: WindowDep, bucket: BucketQuery = Bucket.HOUR
    ) -> list[dict[str, Any]]:
        """Orders and revenue per hour or day (UTC)."""
        async with service.sessions() as session:
            return await queries.timeseries(session, window, bucket)

    @app.get("/statuses", tags=["analytics"])
    async def statuses(service: ServiceDep, _: AnalystDep, window: WindowDep) -> dict[str, int]:
        """How many orders are in each status."""
        async with service.sessions() as session:
            return await queries.statuses(session, window)

    @app.get("/cancellations", tags=["analytics"])
    async def cancellations(
        service: ServiceDep, _: AnalystDep, window: WindowDep
    ) -> dict[str, Any]:
        """Cancellations by reason and by the status they interrupted; pizzas wasted."""
        async with service.sessions() as session:
            return await queries.cancellations(session, window)

    @app.get("/pizzas", tags=["analytics"])
    async def pizzas(service: ServiceDep, _: AnalystDep, window: WindowDep) -> list[dict[str, Any]]:
        """Pizzas sold and their revenue by name and size (cancelled orders left out)."""
        async with service.sessions() as session:
            return await queries.pizzas(session, window)

    @app.get("/preparation", tags=["analytics"])
    async def preparation(
        service: ServiceDep, _: AnalystDep, window: WindowDep, bucket: BucketQuery = Bucket.HOUR
    ) -> dict[str, Any]:
        """Preparation time (cooking started → ready): average and 90th percentile."""
        async with service.sessions() as session:
            return await queries.preparation(session, window, bucket)

    @app.get("/on-time", tags=["analytics"])
    async def on_time(
        service: ServiceDep, _: AnalystDep, window: WindowDep, bucket: BucketQuery = Bucket.HOUR
    ) -> dict[str, Any]:
        """Share of orders ready no later than the kitchen's estimate."""
        async with service.sessions() as session:
            return await queries.on_time(session, window, bucket)

    @app.get("/cooks", tags=["analytics"])
    async def cooks(service: ServiceDep, _: AnalystDep, window: WindowDep) -> list[dict[str, Any]]:
        """Per cook: orders started and ready, preparation time, on-time rate, waste."""
        async with service.sessions() as session:
            return await queries.cooks(session, window)

    @app.get("/drivers", tags=["analytics"])
    async def drivers(
        service: ServiceDep, _: AnalystDep, window: WindowDep
    ) -> list[dict[str, Any]]:
        """Per driver: departures, deliveries, delivery time."""
        async with service.sessions() as session:
            return await queries.drivers(session, window)

    @app.get("/peak-hours", tags=["analytics"])
    async def peak_hours(
        service: ServiceDep, _: AnalystDep, window: WindowDep
    ) -> list[dict[str, Any]]:
        """Orders and revenue by hour of the day (UTC)."""
        async with service.sessions() as session:
            return await queries.peak_hours(session, window)

    @app.get("/top-customers", tags=["analytics"])
    async def top_customers(
        service: ServiceDep,
        _: AnalystDep,
        window: WindowDep,
        limit: Annotated[int, Query(ge=1, le=100)] = 10,
    ) -> list[dict[str, Any]]:
        """Customers (pseudonymous ids) by revenue."""
        async with service.sessions() as session:
            return await queries.top_customers(session, window, limit)

    @app.get("/orders/{order_id}", tags=["analytics"])
    async def order_fact(order_id: str, service: ServiceDep, _: AnalystDep) -> dict[str, Any]:
        """What analytics knows of one order: its fact row and lines."""
        async with service.sessions() as session:
            fact = await queries.order_fact(session, order_id)
        if fact is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no order {order_id!r}")
        return fact

    return app
