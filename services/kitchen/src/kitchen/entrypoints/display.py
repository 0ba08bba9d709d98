"""The kitchen display: one self-contained HTML page for the kitchen's tablet, at ``GET /display``.

The page itself is public and holds no kitchen data; it shows the board only once a cook signs
in with a token. It then reads ``GET /queue/stream`` (Server-Sent Events, read with ``fetch()``
so that it can send the token) and posts to ``/tickets/{id}/start`` and ``/tickets/{id}/ready``,
each with ``Authorization: Bearer``. Everything it needs is inline in ``static/display.html``,
so it works without internet access and without a build step, under a Content-Security-Policy
that admits only those inline parts (``service_kit.pages``).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from service_kit.pages import page_response, page_responses

router = APIRouter(tags=["display"])


@router.get(
    "/display",
    response_class=HTMLResponse,
    responses=page_responses("The page; it holds no kitchen data and asks for a cook's token."),
    summary="The kitchen display (HTML)",
)
async def display() -> HTMLResponse:
    """The live kitchen board (after a cook signs in): queued, cooking and ready tickets, with
    Start and Ready buttons."""
    return page_response("kitchen.entrypoints", "display.html")
