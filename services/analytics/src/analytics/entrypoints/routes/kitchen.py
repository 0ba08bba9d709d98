"""The kitchen: preparation times, orders ready on time, and each cook's figures."""

from __future__ import annotations

from fastapi import APIRouter

from analytics.adapters import queries
from analytics.domain.window import Bucket
from analytics.entrypoints.deps import (
    AnalystDep,
    BucketQuery,
    ServiceDep,
    WindowDep,
    analyst_responses,
)
from analytics.entrypoints.schemas import CookStats, OnTime, Preparation

router = APIRouter(tags=["analytics"])


@router.get("/preparation", responses=analyst_responses())
async def preparation(
    service: ServiceDep, _: AnalystDep, window: WindowDep, bucket: BucketQuery = Bucket.HOUR
) -> Preparation:
    """Preparation time (cooking started → ready): average and 90th percentile."""
    async with service.sessions() as session:
        return Preparation.model_validate(await queries.preparation(session, window, bucket))


@router.get("/on-time", responses=analyst_responses())
async def on_time(
    service: ServiceDep, _: AnalystDep, window: WindowDep, bucket: BucketQuery = Bucket.HOUR
) -> OnTime:
    """Share of orders ready no later than the kitchen's estimate."""
    async with service.sessions() as session:
        return OnTime.model_validate(await queries.on_time(session, window, bucket))


@router.get("/cooks", responses=analyst_responses())
async def cooks(service: ServiceDep, _: AnalystDep, window: WindowDep) -> list[CookStats]:
    """Per cook: orders started and ready, preparation time, on-time rate, waste."""
    async with service.sessions() as session:
        rows = await queries.cooks(session, window)
    return [CookStats.model_validate(row) for row in rows]
