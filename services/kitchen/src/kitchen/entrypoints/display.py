"""The kitchen display: one self-contained HTML page for the kitchen's tablet, at ``GET /display``.

The page reads ``GET /queue/stream`` (Server-Sent Events) and posts to ``/tickets/{id}/start``
and ``/tickets/{id}/ready`` with the cook's bearer token; everything it needs is inline in
``static/display.html``, so it works without internet access and without a build step.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from eventing.pages import page_response

router = APIRouter(tags=["display"])


@router.get("/display", response_class=HTMLResponse, summary="The kitchen display (HTML)")
def display() -> HTMLResponse:
    """The live kitchen board: queued, cooking and ready tickets, with Start and Ready buttons."""
    return page_response("kitchen.entrypoints", "display.html")
