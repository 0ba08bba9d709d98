"""Orders: counts, sales and statuses over a window of time, and what is known of one order."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from analytics.adapters import queries
from analytics.domain.window import Bucket
from analytics.entrypoints.deps import (
    AnalystDep,
    BucketQuery,
    OrderId,
    ServiceDep,
    WindowDep,
    analyst_responses,
)
from analytics.entrypoints.schemas import (
    Cancellations,
    HourOfDay,
    OrderFact,
    Overview,
    PizzaSales,
    StatusCounts,
    TimeBucket,
)

router = APIRouter(tags=["analytics"])


@router.get("/overview", responses=analyst_responses())
async def overview(service: ServiceDep, _: AnalystDep, window: WindowDep) -> Overview:
    """Orders, cancellations, revenue, average order value, pizzas, customers."""
    async with service.sessions() as session:
        return Overview.model_validate(await queries.overview(session, window))


@router.get("/timeseries", responses=analyst_responses())
async def timeseries(
    service: ServiceDep, _: AnalystDep, window: WindowDep, bucket: BucketQuery = Bucket.HOUR
) -> list[TimeBucket]:
    """Orders and revenue per hour or day (UTC), the buckets that have orders."""
    async with service.sessions() as session:
        rows = await queries.timeseries(session, window, bucket)
    return [TimeBucket.model_validate(row) for row in rows]


@router.get("/statuses", responses=analyst_responses())
async def statuses(service: ServiceDep, _: AnalystDep, window: WindowDep) -> StatusCounts:
    """How many orders are in each status."""
    async with service.sessions() as session:
        return StatusCounts(await queries.statuses(session, window))


@router.get("/cancellations", responses=analyst_responses())
async def cancellations(service: ServiceDep, _: AnalystDep, window: WindowDep) -> Cancellations:
    """Cancellations by reason and by the status they interrupted; pizzas wasted."""
    async with service.sessions() as session:
        return Cancellations.model_validate(await queries.cancellations(session, window))


@router.get("/pizzas", responses=analyst_responses())
async def pizzas(service: ServiceDep, _: AnalystDep, window: WindowDep) -> list[PizzaSales]:
    """Pizzas sold and their revenue by name and size (cancelled orders left out)."""
    async with service.sessions() as session:
        rows = await queries.pizzas(session, window)
    return [PizzaSales.model_validate(row) for row in rows]


@router.get("/peak-hours", responses=analyst_responses())
async def peak_hours(service: ServiceDep, _: AnalystDep, window: WindowDep) -> list[HourOfDay]:
    """Orders and revenue by hour of the day (UTC), the hours that have orders."""
    async with service.sessions() as session:
        rows = await queries.peak_hours(session, window)
    return [HourOfDay.model_validate(row) for row in rows]


@router.get(
    "/orders/{order_id}",
    responses=analyst_responses(
        404,
        examples={404: {"detail": "no order '01a2173f-2a59-7101-9f24-859a52435820'"}},
        _404="No event of that order has been read (yet).",
    ),
)
async def order_fact(order_id: OrderId, service: ServiceDep, _: AnalystDep) -> OrderFact:
    """What analytics knows of one order: its fact row and lines."""
    async with service.sessions() as session:
        fact = await queries.order_fact(session, order_id)
    if fact is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no order {order_id!r}")
    return OrderFact.model_validate(fact)
