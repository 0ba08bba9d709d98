"""Waiting between attempts: how long (``backoff``), and a pause that ``stop()`` cuts short."""

from __future__ import annotations

import asyncio
import contextlib
import random

__all__ = ["backoff", "pause"]


def backoff(attempt: int, base: float = 0.2, cap: float = 5.0) -> float:
    """Seconds to wait before attempt ``attempt + 1``: exponential, with full jitter, so that
    processes that failed together do not all come back in the same instant."""
    return random.uniform(0, min(cap, base * 2 ** max(0, attempt - 1)))


async def pause(seconds: float, stopping: asyncio.Event) -> None:
    """Wait ``seconds``, or until ``stopping`` is set if that comes first."""
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stopping.wait(), timeout=seconds)
