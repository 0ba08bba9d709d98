"""Drivers: their departures, deliveries and delivery times."""

from __future__ import annotations

from fastapi import APIRouter

from analytics.adapters import queries
from analytics.entrypoints.deps import AnalystDep, ServiceDep, WindowDep, analyst_responses
from analytics.entrypoints.schemas import DriverStats

router = APIRouter(tags=["analytics"])


@router.get("/drivers", responses=analyst_responses())
async def drivers(service: ServiceDep, _: AnalystDep, window: WindowDep) -> list[DriverStats]:
    """Per driver: departures, deliveries, delivery time."""
    async with service.sessions() as session:
        rows = await queries.drivers(session, window)
    return [DriverStats.model_validate(row) for row in rows]
