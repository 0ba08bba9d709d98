"""Self-contained HTML pages (the kitchen display, the analytics dashboard) served with a strict
Content-Security-Policy that admits exactly the page's own inline scripts and styles, by hash.

Nothing is fetched from elsewhere, so the pages work offline and without a build step; an
injected script, having another hash, would not run.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache
from importlib.resources import files
from typing import Any

from fastapi.responses import HTMLResponse

_NONE = "'none'"
_INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.DOTALL)


def _csp_hash(source: str) -> str:
    digest = hashlib.sha256(source.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


@cache
def _page(package: str, name: str) -> tuple[str, str]:
    """The page ``static/<name>`` of ``package`` and its Content-Security-Policy."""
    html = (files(package) / "static" / name).read_text(encoding="utf-8")
    inline = _INLINE.findall(html)
    scripts = " ".join(_csp_hash(body) for kind, body in inline if kind == "script") or _NONE
    styles = " ".join(_csp_hash(body) for kind, body in inline if kind == "style") or _NONE
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


def page_response(package: str, name: str) -> HTMLResponse:
    html, policy = _page(package, name)
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": policy,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache",
        },
    )


def page_responses(description: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of a page route: its 200 is HTML, not JSON."""
    return {
        200: {
            "description": description,
            "content": {"text/html": {"example": '<!doctype html><html lang="en">…</html>'}},
        }
    }
