"""The analytics dashboard: one self-contained HTML page at ``GET /dashboard``.

The page asks for an analyst or manager token, then reads the API (``/overview``,
``/timeseries``, ``/preparation``, ``/on-time``, ...) with it and draws its charts as inline SVG:
no script or style is fetched from elsewhere, so it works offline.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache
from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["dashboard"])

PAGE = "dashboard.html"
NONE = "'none'"
_INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.DOTALL)


def _csp_hash(source: str) -> str:
    digest = hashlib.sha256(source.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


@cache
def _page() -> tuple[str, str]:
    """The page and its Content-Security-Policy, which admits exactly its inline code."""
    html = (files("analytics.entrypoints") / "static" / PAGE).read_text(encoding="utf-8")
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


@router.get("/dashboard", response_class=HTMLResponse, summary="The analytics dashboard (HTML)")
def dashboard() -> HTMLResponse:
    """Charts of orders per hour, revenue, preparation time and on-time rate (needs a token)."""
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
