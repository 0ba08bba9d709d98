"""What a GET answered, as a value to poll on and to show when the wait fails."""

from __future__ import annotations

from typing import Any

import httpx


async def answer(
    client: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """``GET url``: the status and the JSON document, or the text when the status is not 200."""
    response = await client.get(url, headers=headers)
    if response.status_code != 200:
        return response.status_code, response.text[:500]
    return response.status_code, response.json()
