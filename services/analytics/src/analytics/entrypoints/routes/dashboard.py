"""The analytics dashboard: one self-contained HTML page at ``GET /dashboard``.

The page asks for an analyst or manager token, then reads the API (``/overview``,
``/timeseries``, ``/preparation``, ``/on-time``, ...) with it and draws its charts as inline SVG:
no script or style is fetched from elsewhere, so it works offline.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from service_kit.pages import page_response, page_responses

router = APIRouter(tags=["dashboard"])


@router.get(
    "/dashboard",
    response_class=HTMLResponse,
    responses=page_responses("The dashboard page; it asks for a token itself."),
    summary="The analytics dashboard (HTML)",
)
async def dashboard() -> HTMLResponse:
    """Charts of orders per hour, revenue, preparation time and on-time rate (needs a token)."""
    return page_response("analytics.entrypoints", "dashboard.html")
