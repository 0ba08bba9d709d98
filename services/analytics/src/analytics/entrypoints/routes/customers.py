"""Customers, by their pseudonymous ids only: who brings the most revenue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from analytics.adapters import queries
from analytics.entrypoints.deps import AnalystDep, ServiceDep, WindowDep, analyst_responses
from analytics.entrypoints.schemas import CustomerRevenue

router = APIRouter(tags=["analytics"])


@router.get("/top-customers", responses=analyst_responses())
async def top_customers(
    service: ServiceDep,
    _: AnalystDep,
    window: WindowDep,
    limit: Annotated[int, Query(ge=1, le=100, description="At most this many.")] = 10,
) -> list[CustomerRevenue]:
    """Customers (pseudonymous ids) by revenue."""
    async with service.sessions() as session:
        rows = await queries.top_customers(session, window, limit)
    return [CustomerRevenue.model_validate(row) for row in rows]
