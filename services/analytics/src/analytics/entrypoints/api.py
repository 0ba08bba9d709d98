"""The analytics service's HTTP API: every answer derived from events alone.

All routes but the dashboard page need an analyst or manager token. ``from``/``to`` select the
orders placed in ``[from, to)`` (RFC 3339 with an offset); ``from`` not earlier than ``to`` is
an empty window, answered with zero counts. Buckets and hours are UTC.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, status

from analytics.adapters import queries
from analytics.bootstrap import bootstrap
from analytics.domain.window import Bucket
from analytics.entrypoints import dashboard
from analytics.entrypoints.deps import AnalystDep, BucketQuery, OrderId, WindowDep
from analytics.entrypoints.schemas import (
    Cancellations,
    CookStats,
    CustomerRevenue,
    DriverStats,
    HourOfDay,
    OnTime,
    OrderFact,
    Overview,
    PizzaSales,
    Preparation,
    StatusCounts,
    TimeBucket,
)
from analytics.settings import AnalyticsSettings
from service_kit.http import COMMON_ERRORS, error_responses, protect
from service_kit.service import ConsumingService, ServiceDep, consuming_lifespan

_ANALYST_ERRORS: dict[str, Any] = {
    "_401": "No valid bearer token (`WWW-Authenticate: Bearer`).",
    "_403": "The token has neither the analyst nor the manager role.",
    "_422": "A bad `from`, `to`, `bucket` or `limit` (the detail names it): times must be "
    "RFC 3339 with their offset.",
}
_FORBIDDEN = {403: {"detail": "requires one of the roles: analyst, manager"}}
ANALYST_RESPONSES = error_responses(401, 403, 422, examples=_FORBIDDEN, **_ANALYST_ERRORS)
FACT_RESPONSES = error_responses(
    401,
    403,
    404,
    422,
    examples={
        **_FORBIDDEN,
        404: {"detail": "no order '01a2173f-2a59-7101-9f24-859a52435820'"},
    },
    _404="No event of that order has been read (yet).",
    **_ANALYST_ERRORS,
)


def create_app(settings: AnalyticsSettings | None = None) -> FastAPI:
    app = FastAPI(
        title="Mario's Pizzeria — Analytics",
        version="0.2.0",
        description=__doc__,
        lifespan=consuming_lifespan(lambda: bootstrap(settings)),
        responses=error_responses(*COMMON_ERRORS),
    )
    protect(app)
    app.include_router(dashboard.router)

    @app.get("/overview", tags=["analytics"], responses=ANALYST_RESPONSES)
    async def overview(
        service: ServiceDep[ConsumingService], _: AnalystDep, window: WindowDep
    ) -> Overview:
        """Orders, cancellations, revenue, average order value, pizzas, customers."""
        async with service.sessions() as session:
            return Overview.model_validate(await queries.overview(session, window))

    @app.get("/timeseries", tags=["analytics"], responses=ANALYST_RESPONSES)
    async def timeseries(
        service: ServiceDep[ConsumingService],
        _: AnalystDep,
        window: WindowDep,
        bucket: BucketQuery = Bucket.HOUR,
    ) -> list[TimeBucket]:
        """Orders and revenue per hour or day (UTC), the buckets that have orders."""
        async with service.sessions() as session:
            rows = await queries.timeseries(session, window, bucket)
        return [TimeBucket.model_validate(row) for row in rows]

    @app.get("/statuses", tags=["analytics"], responses=ANALYST_RESPONSES)
    async def statuses(
        service: ServiceDep[ConsumingService], _: AnalystDep, window: WindowDep
    ) -> StatusCounts:
        """How many orders are in each status."""
        async with service.sessions() as session:
            return StatusCounts.model_validate(await queries.statuses(session, window))

    @app.get("/cancellations", tags=["analytics"], responses=ANALYST_RESPONSES)
    async def cancellations(
        service: ServiceDep[ConsumingService], _: AnalystDep, window: WindowDep
    ) -> Cancellations:
        """Cancellations by reason and by the status they interrupted; pizzas wasted."""
        async with service.sessions() as session:
            return Cancellations.model_validate(await queries.cancellations(session, window))

    @app.get("/pizzas", tags=["analytics"], responses=ANALYST_RESPONSES)
    async def pizzas(
        service: ServiceDep[ConsumingService], _: AnalystDep, window: WindowDep
    ) -> list[PizzaSales]:
        """Pizzas sold and their revenue by name and size (cancelled orders left out)."""
        async with service.sessions() as session:
            rows = await queries.pizzas(session, window)
        return [PizzaSales.model_validate(row) for row in rows]

    @app.get("/preparation", tags=["analytics"], responses=ANALYST_RESPONSES)
    async def preparation(
        service: ServiceDep[ConsumingService],
        _: AnalystDep,
        window: WindowDep,
        bucket: BucketQuery = Bucket.HOUR,
    ) -> Preparation:
        """Preparation time (cooking started → ready): average and 90th percentile."""
        async with service.sessions() as session:
            return Preparation.model_validate(await queries.preparation(session, window, bucket))

    @app.get("/on-time", tags=["analytics"], responses=ANALYST_RESPONSES)
    async def on_time(
        service: ServiceDep[ConsumingService],
        _: AnalystDep,
        window: WindowDep,
        bucket: BucketQuery = Bucket.HOUR,
    ) -> OnTime:
        """Share of orders ready no later than the kitchen's estimate."""
        async with service.sessions() as session:
            return OnTime.model_validate(await queries.on_time(session, window, bucket))

    @app.get("/cooks", tags=["analytics"], responses=ANALYST_RESPONSES)
    async def cooks(
        service: ServiceDep[ConsumingService], _: AnalystDep, window: WindowDep
    ) -> list[CookStats]:
        """Per cook: orders started and ready, preparation time, on-time rate, waste."""
        async with service.sessions() as session:
            rows = await queries.cooks(session, window)
        return [CookStats.model_validate(row) for row in rows]

    @app.get("/drivers", tags=["analytics"], responses=ANALYST_RESPONSES)
    async def drivers(
        service: ServiceDep[ConsumingService], _: AnalystDep, window: WindowDep
    ) -> list[DriverStats]:
        """Per driver: departures, deliveries, delivery time."""
        async with service.sessions() as session:
            rows = await queries.drivers(session, window)
        return [DriverStats.model_validate(row) for row in rows]

    @app.get("/peak-hours", tags=["analytics"], responses=ANALYST_RESPONSES)
    async def peak_hours(
        service: ServiceDep[ConsumingService], _: AnalystDep, window: WindowDep
    ) -> list[HourOfDay]:
        """Orders and revenue by hour of the day (UTC), the hours that have orders."""
        async with service.sessions() as session:
            rows = await queries.peak_hours(session, window)
        return [HourOfDay.model_validate(row) for row in rows]

    @app.get("/top-customers", tags=["analytics"], responses=ANALYST_RESPONSES)
    async def top_customers(
        service: ServiceDep[ConsumingService],
        _: AnalystDep,
        window: WindowDep,
        limit: Annotated[int, Query(ge=1, le=100, description="At most this many.")] = 10,
    ) -> list[CustomerRevenue]:
        """Customers (pseudonymous ids) by revenue."""
        async with service.sessions() as session:
            rows = await queries.top_customers(session, window, limit)
        return [CustomerRevenue.model_validate(row) for row in rows]

    @app.get("/orders/{order_id}", tags=["analytics"], responses=FACT_RESPONSES)
    async def order_fact(
        order_id: OrderId, service: ServiceDep[ConsumingService], _: AnalystDep
    ) -> OrderFact:
        """What analytics knows of one order: its fact row and lines."""
        async with service.sessions() as session:
            fact = await queries.order_fact(session, order_id)
        if fact is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no order {order_id!r}")
        return OrderFact.model_validate(fact)

    return app
