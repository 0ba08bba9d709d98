"""The kitchen display: one self-contained HTML page for the kitchen's tablet, at ``GET /display``.

The page reads ``GET /queue/stream`` (Server-Sent Events) and posts to ``/tickets/{id}/start``
and ``/tickets/{id}/ready`` with the cook's bearer token; everything it needs is inline in
``static/display.html``, so it works without internet access and without a build step.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache
from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["display"])

PAGE = "display.html"
NONE = "'none'"
_INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.DOTALL)


def _csp_hash(source: str) -> str:
    digest = hashlib.sha256(source.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


@cache
def _page() -> tuple[str, str]:
    """The page and its Content-Security-Policy, which admits exactly its inline code."""
    html = (files("kitchen.entrypoints") / "static" / PAGE).read_text(encoding="utf-8")
    inline = _INLINE.findall(html)
    scripts = " ".join(_csp_hash(body) for kind, body in inline if kind == "script") or NONE
    styles = " ".join(_csp_hash(body) for kind, body in inline if kind == "style") or NONE
    policy = "; ".join(
        [
            "default-src 'none'",
            f"script-src {scripts}",
            f"style-src {styles}",
            "connect-src 'self'",
            "img-src 'self' data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )
    return html, policy


@router.get("/display", response_class=HTMLResponse, summary="The kitchen display (HTML)")
def display() -> HTMLResponse:
    """The live kitchen board: queued, cooking and ready tickets, with Start and Ready buttons."""
    html, policy = _page()
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": policy,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache",
        },
    )
